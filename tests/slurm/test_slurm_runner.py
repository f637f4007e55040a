"""The command runner, with real processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from slurm_helpers import wait_until

from vec_inf_flows.backends.slurm.runner import run_command, slurm_environment
from vec_inf_flows.errors import SlurmNotInstalledError


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUEUE_FORMAT", "%i")
    monkeypatch.setenv("SACCT_FORMAT", "jobid")
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_TIME_FORMAT", "relative")
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    monkeypatch.setenv("KEEP_ME", "yes")

    printed = run_command(
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"], timeout=30
    )

    env = json.loads(printed.stdout)
    assert not {"SQUEUE_FORMAT", "SACCT_FORMAT", "SLURM_JOB_ID", "SLURM_TIME_FORMAT"} & set(env)
    assert env["SLURM_CONF"] == "/etc/slurm/slurm.conf"
    assert env["TZ"] == "UTC"
    assert env["KEEP_ME"] == "yes"
    assert slurm_environment({"SLURM_NODELIST": "n1", "PATH": "/bin"}) == {
        "PATH": "/bin",
        "TZ": "UTC",
    }


def test_stdin_stdout_stderr_and_returncode() -> None:
    code = (
        "import sys; data = sys.stdin.read(); print(data.upper()); "
        "print('oops', file=sys.stderr); sys.exit(3)"
    )
    result = run_command([sys.executable, "-c", code], timeout=30, stdin_text="#!/bin/bash\n")
    assert (result.returncode, result.stdout, result.stderr) == (3, "#!/BIN/BASH\n\n", "oops\n")
    assert not result.ok and not result.timed_out


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # A wrapper that starts a grandchild and waits: both must die at the timeout.
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    result = run_command([sys.executable, "-c", code], timeout=1.0)
    assert result.timed_out
    grandchild = int(pid_file.read_text())

    def gone() -> bool | None:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return True
        status = Path(f"/proc/{grandchild}/status")
        zombie = status.exists() and "State:\tZ" in status.read_text()
        return True if zombie else None

    wait_until(gone, 10, "the grandchild to be killed")


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmNotInstalledError) as raised:
        run_command(["sbatch", "--parsable"], timeout=5)
    assert str(raised.value) == "Slurm is not installed: sbatch not found on PATH"
