"""The real CPU vLLM: set up once per machine (about 4 minutes the first time), then reused."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import Sandbox, cancel_sandbox_jobs, make_sandbox

from vec_inf_flows.engines.cpu import CpuEngine


@pytest.fixture(scope="session", autouse=True)
def cpu_engine() -> CpuEngine:
    engine = CpuEngine.default()
    engine.setup()  # idempotent; a failure is a test failure, with the step and its log named
    assert engine.ready()
    return engine


@pytest.fixture(scope="session", autouse=True)
def slurm_is_up() -> None:
    if shutil.which("sinfo") is None:
        pytest.fail("Slurm is not installed: run scripts/slurm/up.sh")
    answer = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if answer.returncode != 0 or not answer.stdout.strip():
        pytest.fail(f"the local Slurm cluster is not answering: {answer.stderr.strip()}")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    box = make_sandbox(tmp_path, monkeypatch)
    try:
        yield box
    finally:
        cancel_sandbox_jobs(box)
