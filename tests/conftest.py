"""Fixtures every test folder shares; also makes ``testkit`` importable from every folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import Sandbox, cancel_sandbox_jobs, make_sandbox

SLURM_HINT = "run scripts/slurm/up.sh to start the local Slurm cluster"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local cluster must answer: a missing cluster fails a test, never skips it."""
    if shutil.which("sinfo") is None:
        pytest.fail(f"Slurm is not installed (no sinfo on PATH): {SLURM_HINT}")
    try:
        answer = subprocess.run(
            ["sinfo", "--noheader", "--format=%n %t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sinfo did not answer within 30 s: {SLURM_HINT}")
    if answer.returncode != 0 or not answer.stdout.strip():
        pytest.fail(f"sinfo failed ({answer.stderr.strip()}): {SLURM_HINT}")


# A test's tier follows from what it uses, so a marker can never disagree with the test's needs.
_TIER_OF_FIXTURE = {
    "slurm_cluster": "slurm",  # and every fixture built on it (sandbox, jobs ...)
    "cpu_engine": "real_engine",
    "controller_restarted": "disruptive",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, tier in _TIER_OF_FIXTURE.items():
            if fixture in used:
                item.add_marker(tier)
        if item.get_closest_marker("disruptive") is not None:
            item.add_marker("slurm")


@pytest.fixture(autouse=True)
def _needs_cluster(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: None
) -> Iterator[Sandbox]:
    """A state home and log dir of the test's own; its jobs are cancelled afterwards."""
    box = make_sandbox(tmp_path, monkeypatch)
    try:
        yield box
    finally:
        cancel_sandbox_jobs(box)
