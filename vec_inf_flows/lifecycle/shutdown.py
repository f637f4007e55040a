"""Shutting servers down without lying about it.

The marker in each job dir is written *unconfirmed* before the cancel, confirmed only once the
cancel succeeded and put back as it was if the cancel failed, so status never says a running
server is shut down. A server that had FAILED keeps its reason in the marker. With ``wait`` the
call returns only once the scheduler runs no part of the jobs (COMPLETING is not gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import ShutdownPending, ShutdownRefusedError, SlurmTransientError
from vec_inf_flows.jobs import JobRecord
from vec_inf_flows.lifecycle.evidence import (
    ShutdownRecord,
    read_shutdown,
    restore_shutdown,
    write_shutdown,
)
from vec_inf_flows.origin import JobOrigin, shutdown_refusal
from vec_inf_flows.server_status import ServerStatus, StatusResponse


def shut_down(
    backend: Backend,
    servers: Mapping[str, Sequence[str]],
    before: Mapping[str, StatusResponse],
    directories: Mapping[str, Path | None],
    *,
    force: bool,
    wait: bool,
    timeout: float,
    on_cancelled: Callable[[Path], None] = lambda _directory: None,
) -> None:
    """Cancel jobs; see the module docstring.

    ``servers`` maps each id to cancel to the servers it runs (itself, or a batch's
    components); ``before`` is each server's status just before, ``directories`` its job dir.
    Jobs whose servers all ended are left alone; ``on_cancelled`` runs for each job dir whose
    job was cancelled (the client stops renewing its lease there).
    """
    for server_id, status in before.items():
        foreign = status.server_status is ServerStatus.FOREIGN
        origin = JobOrigin.FOREIGN if foreign else JobOrigin.OURS
        refusal = shutdown_refusal(server_id, origin, force=force)
        if refusal is not None:
            raise ShutdownRefusedError(refusal)
    ended = ServerStatus.SHUTDOWN
    to_cancel = [
        job_id
        for job_id, ids in servers.items()
        if any(before[i].server_status is not ended for i in ids)
    ]
    live = [
        i for job_id in to_cancel for i in servers[job_id] if before[i].server_status is not ended
    ]
    marked = _mark(live, before, directories)
    try:
        if to_cancel:
            backend.cancel(to_cancel)
    except BaseException:
        for directory, previous in marked:  # the cancel failed: the server runs on
            restore_shutdown(directory, previous)
        raise
    for directory, _ in marked:
        asked = read_shutdown(directory)
        if asked is not None:
            write_shutdown(directory, ShutdownRecord(asked.requested_at, True, asked.failed_reason))
        on_cancelled(directory)
    if wait and to_cancel:
        wait_until_gone(backend, to_cancel, timeout)


def _mark(
    ids: Sequence[str],
    before: Mapping[str, StatusResponse],
    directories: Mapping[str, Path | None],
) -> list[tuple[Path, ShutdownRecord | None]]:
    """Unconfirmed markers (keeping a failure's reason); what each held before, to restore."""
    marked: list[tuple[Path, ShutdownRecord | None]] = []
    for job_id in ids:
        directory = directories.get(job_id)
        if directory is None:
            continue
        status = before[job_id]
        failed = status.failed_reason if status.server_status is ServerStatus.FAILED else None
        previous = read_shutdown(directory)
        write_shutdown(directory, ShutdownRecord(time.time(), False, failed))
        marked.append((directory, previous))
    return marked


def still_running(records: Mapping[str, JobRecord]) -> list[JobRecord]:
    return [record for record in records.values() if not record.phase.terminal]


def wait_until_gone(
    backend: Backend,
    job_ids: Sequence[str],
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll (one query per round, backing off to 2 s) until every job has ended or is forgotten.

    Raises ShutdownPending (a ServerError) naming what still runs at the timeout; a transient
    scheduler error only delays the answer.
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
            raise ShutdownPending(
                f"Cancelled, but Slurm still runs job(s) {running} after {timeout:.0f} s; "
                "`status` says STOPPING until they are gone.",
                [record.job_id for record in left] or list(job_ids),
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)
