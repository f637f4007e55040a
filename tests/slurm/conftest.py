"""Fixtures for tests against the real local Slurm cluster (scripts/slurm/up.sh)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from slurm_helpers import CTLD_SCRIPT, FAST_RETRY

from vec_inf_flows.backends.slurm.backend import SlurmBackend


@pytest.fixture
def backend() -> SlurmBackend:
    return SlurmBackend(retry=FAST_RETRY)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Ids appended here are cancelled after the test, whatever happened."""
    job_ids: list[str] = []
    yield job_ids
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=30)


@pytest.fixture
def controller_restarted() -> Iterator[None]:
    """Whatever a test does to slurmctld, it runs again afterwards."""
    try:
        yield
    finally:
        subprocess.run([str(CTLD_SCRIPT), "start"], check=True, capture_output=True, timeout=60)
