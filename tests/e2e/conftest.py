"""End-to-end fixtures: the real client and CLI on the real local Slurm cluster, with the simulator.

Each test gets its own state home and log dir, and every job it started is cancelled afterwards
(found through its job index), whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import Sandbox

from vec_inf_flows.client import VecInfClient


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
    home, logs = tmp_path / "home", tmp_path / "logs"
    monkeypatch.setenv("VEC_INF_FLOWS_HOME", str(home))
    monkeypatch.setenv("VEC_INF_LOG_DIR", str(logs))
    monkeypatch.delenv("VEC_INF_CONFIG", raising=False)
    monkeypatch.delenv("VEC_INF_API_KEY", raising=False)
    env = dict(os.environ)
    box = Sandbox(home, logs, env, VecInfClient(state_dir=home))
    try:
        yield box
    finally:
        ids = [job_id.split("+")[0] for job_id in box.job_ids()]
        if ids:
            subprocess.run(["scancel", *sorted(set(ids))], capture_output=True, timeout=30)
