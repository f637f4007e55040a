"""Fixtures for the script tests: stub commands on PATH and running rendered scripts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from script_helpers import RunScript, StubBin, new_stub_bin, script_env


@pytest.fixture
def stubs(tmp_path: Path) -> StubBin:
    return new_stub_bin(tmp_path)


@pytest.fixture
def run_script(tmp_path: Path, stubs: StubBin) -> Iterator[RunScript]:
    """Run script text under bash in its own session; kill whatever it left behind."""
    sessions: list[int] = []

    def run(text: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "job.slurm"
        path.write_text(text)
        process = subprocess.Popen(
            ["bash", str(path)],
            cwd=tmp_path,
            env=script_env(stubs, **extra_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        sessions.append(process.pid)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    yield run
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
