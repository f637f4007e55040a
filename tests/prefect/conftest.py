"""One Prefect API server for the session (prefect_test_harness), the real local Slurm cluster,
and per test: its own job index and log directory, with every job it left cancelled at the end."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect keeps its home (memo store, local storage) here, never in the user's home; flow
# subprocesses and the runner's children inherit it.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="vec-inf-flows-prefect-home-")

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401
from prefect.testing.utilities import prefect_test_harness
from prefect_helpers import ClusterJobs

atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.fixture
def jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: None
) -> Iterator[ClusterJobs]:
    """This test's jobs; in-process flows, subprocesses and runner children all see the same
    ``VEC_INF_FLOWS_HOME``. Whatever happens, they are cancelled afterwards."""
    home = tmp_path / "home"
    monkeypatch.setenv("VEC_INF_FLOWS_HOME", str(home))
    cluster_jobs = ClusterJobs(home, tmp_path / "logs")
    try:
        yield cluster_jobs
    finally:
        cluster_jobs.cancel_all()


@pytest.fixture
def subprocess_env(tmp_path: Path, jobs: ClusterJobs) -> dict[str, str]:
    """Environment for a flow in a child process: this session's API, this test's job index."""
    return {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "VEC_INF_FLOWS_HOME": str(jobs.home),
        "PYTHONUNBUFFERED": "1",
    }
