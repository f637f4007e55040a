"""Fixtures for tests against the real local Slurm cluster (scripts/slurm/up.sh)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from slurm_helpers import CTLD_SCRIPT, FAST_RETRY

from vec_inf_flows.backends.slurm.backend import SlurmBackend


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local cluster must answer; a missing cluster is a failure, never a skip."""
    hint = "run scripts/slurm/up.sh to start the local Slurm cluster"
    if shutil.which("sinfo") is None:
        pytest.fail(f"Slurm is not installed (no sinfo on PATH): {hint}")
    try:
        answer = subprocess.run(
            ["sinfo", "--noheader", "--format=%n %t"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sinfo did not answer within 20 s: {hint}")
    if answer.returncode != 0 or not answer.stdout.strip():
        pytest.fail(f"sinfo failed ({answer.stderr.strip()}): {hint}")


@pytest.fixture(autouse=True)
def _needs_cluster(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


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
