"""One Prefect API server for the whole session (prefect_test_harness), heartbeat off."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401
from prefect.testing.utilities import prefect_test_harness
from prefect_fakes import FileBackedClient, completions_server

from vec_inf_flows.tasks import client_factory


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture(scope="session")
def completions_url() -> Iterator[str]:
    with completions_server() as url:
        yield url


@pytest.fixture
def fake_client(tmp_path: Path, completions_url: str) -> Iterator[FileBackedClient]:
    client = FileBackedClient(tmp_path / "fake-cluster", base_url=completions_url)
    with client_factory(lambda cluster: client):
        yield client
