"""Waiting until the scheduler no longer runs any part of a job (COMPLETING is not gone)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import ServerError, SlurmTransientError
from vec_inf_flows.jobs import JobRecord


def still_running(records: dict[str, JobRecord]) -> list[JobRecord]:
    return [record for record in records.values() if not record.phase.terminal]


def wait_until_gone(
    backend: Backend,
    job_ids: Sequence[str],
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll (one query per round, backing off to 2 s) until every job has ended or is forgotten.

    Raises ServerError naming what still runs at the timeout; a transient scheduler error only
    delays the answer.
    """
    deadline = time.monotonic() + timeout
    delay = 0.25
    left: list[JobRecord] = []
    while True:
        try:
            left = still_running(backend.query(job_ids))
        except SlurmTransientError:
            pass  # keep the last answer; the deadline still holds
        else:
            if not left:
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            running = ", ".join(f"{record.job_id} ({record.state})" for record in left) or "?"
            raise ServerError(
                f"Cancelled, but Slurm still runs job(s) {running} after {timeout:.0f} s; "
                "`status` says STOPPING until they are gone."
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)
