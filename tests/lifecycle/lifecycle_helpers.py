"""Shared pieces of the lifecycle tests: small simulator jobs, Slurm shims, waiting on squeue."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from testkit import CLI, REPO, Sandbox

MODEL = "SmolLM2-135M-Instruct"
# Small simulator jobs: the cluster's nodes are shared by every test that runs at once.
SIM = {"engine": "sim", "time": "00:10:00", "cpus_per_task": 1, "mem_per_node": "1G"}
SIM_FLAGS = ["--engine", "sim", "--time", "00:10:00", "--cpus-per-task", "1"]
SIM_FLAGS += ["--mem-per-node", "1G"]
ALIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED")


def slurm_states(job_id: str) -> list[str]:
    """squeue's state words for the job (every component of a het job); [] once it is gone."""
    result = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %T", f"--jobs={job_id}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:  # a purged id: "Invalid job id specified"
        assert "Invalid job id" in result.stderr, result.stderr
        return []
    return [
        state
        for found, state in (line.split() for line in result.stdout.splitlines())
        if found == job_id or found.startswith(f"{job_id}+")
    ]


def slurm_state(job_id: str) -> str:
    """The job's squeue state word, or "" once squeue no longer shows it."""
    states = slurm_states(job_id)
    return states[0] if states else ""


def still_alive(job_id: str) -> bool:
    return any(state in ALIVE for state in slurm_states(job_id))


def wait_gone(job_id: str, timeout: float) -> float:
    """Seconds until no part of the job runs (COMPLETING counts as running)."""
    started = time.monotonic()
    while still_alive(job_id):
        assert time.monotonic() - started < timeout, f"job {job_id} still {slurm_state(job_id)}"
        time.sleep(1)
    return time.monotonic() - started


def shim(directory: Path, command: str, stderr: str, code: int = 1) -> dict[str, str]:
    """A failing ``command`` first on PATH (the seam for faults a real cluster will not make)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / command
    path.write_text(f"#!/bin/sh\necho {json.dumps(stderr)} >&2\nexit {code}\n")
    path.chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}


def cli(sandbox: Sandbox, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**sandbox.env, **(env or {})},
        timeout=timeout,
        cwd=REPO,
    )


def status_json(sandbox: Sandbox, job_id: str, env: dict[str, str] | None = None) -> dict:
    result = cli(sandbox, "status", job_id, "--json-mode", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]
