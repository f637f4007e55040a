"""End-to-end fixtures: the real client and CLI on the real local Slurm cluster, with the simulator.

Each test gets its own state home and log dir, and every job it started is cancelled afterwards
(found through its job index), whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import Sandbox, cancel_sandbox_jobs, make_sandbox


@pytest.fixture(scope="session", autouse=True)
def slurm_is_up() -> None:
    hint = "run scripts/slurm/up.sh to start the local Slurm cluster"
    if shutil.which("sinfo") is None:
        pytest.fail(f"Slurm is not installed: {hint}")
    answer = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if answer.returncode != 0 or not answer.stdout.strip():
        pytest.fail(f"the local Slurm cluster is not answering ({answer.stderr.strip()}): {hint}")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    box = make_sandbox(tmp_path, monkeypatch)
    try:
        yield box
    finally:
        cancel_sandbox_jobs(box)
