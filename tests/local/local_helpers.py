"""Helpers for the local backend tests: scripts, polling a job, and scanning /proc."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from testkit import wait_until

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.backends.local.processes import all_stats
from vec_inf_flows.jobs import JobRecord


def script(body: str, *directives: str, out_dir: Path | None = None) -> str:
    """A job script with ``--output/--error`` in ``out_dir`` (``%j`` patterns, as rendered)."""
    lines = ["#!/bin/bash", *(f"#SBATCH {directive}" for directive in directives)]
    if out_dir is not None:
        lines += [f"#SBATCH --output={out_dir}/job.%j.out", f"#SBATCH --error={out_dir}/job.%j.err"]
    return "\n".join([*lines, "", body, ""])


def wait_for(
    backend: LocalBackend,
    job_id: str,
    until: Callable[[JobRecord], bool],
    timeout: float = 30.0,
) -> JobRecord:
    """Poll the backend until ``until(record)``; fail at the deadline."""

    def reached() -> JobRecord | None:
        record = backend.query([job_id]).get(job_id)
        return record if record is not None and until(record) else None

    return wait_until(reached, timeout, f"job {job_id} to get there")


def wait_terminal(backend: LocalBackend, job_id: str, timeout: float = 30.0) -> JobRecord:
    return wait_for(backend, job_id, lambda record: record.phase.terminal, timeout)


def session_processes(session: int, *, zombies: bool = True) -> list[str]:
    """``pid state`` of every process in the job's session or process group."""
    return [
        f"{stat.pid} {stat.state}"
        for stat in all_stats()
        if session in (stat.session, stat.pgid) and (zombies or stat.state != "Z")
    ]


def wait_session_gone(session: int, timeout: float = 10.0) -> list[str]:
    """For a job that ended by itself: its supervisor may still be reaping for a moment."""
    deadline = time.monotonic() + timeout
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def pgid_of(backend: LocalBackend, job_id: str) -> int:
    job = backend.store.load(job_id)
    assert job is not None and job.started is not None, f"job {job_id} has not started"
    return job.started.pgid
