"""Fixtures for the local backend tests: a backend in tmp_path that leaves nothing running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vec_inf_flows.backends.local import LocalBackend


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    local = LocalBackend(tmp_path / "state", kill_wait=2.0)
    yield local
    local.cancel(local.store.all_ids())  # whatever a failed test left running
