"""Ending servers in bounded time, with plain client calls, and saying honestly how it went.

A shutdown has two parts with different meanings. The cancel is what teardown must get done:
once it succeeded the server is being stopped, and ``status`` says STOPPING until Slurm runs no
part of the job. Waiting for that last part is bounded by Slurm itself (``KillWait`` between its
SIGTERM and SIGKILL, 30 s by default, then the epilog): a server still settling when teardown
stops waiting is not a failed shutdown, and the log says so. Teardown also stops renewing the
server's lease first, so even a cancel that failed (Slurm unreachable) ends the server: the job
stops by itself once its lease lapses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from vec_inf_flows.errors import ShutdownPending
from vec_inf_flows.events import emit_server_event
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle.shutdown import wait_until_gone
from vec_inf_flows.tasks.blocks import client_for

if TYPE_CHECKING:
    from vec_inf_flows.blocks import SlurmCluster
    from vec_inf_flows.client import VecInfClient

logger = logging.getLogger("vec_inf_flows")

# How long teardown waits, after the cancel, for Slurm to run no part of the job: its default
# KillWait (SIGTERM to SIGKILL) is 30 s, and a server that answers SIGTERM ends in a second or two.
TEARDOWN_TIMEOUT = 30.0
# On top of that, for the status check and ``scancel`` (each Slurm call has its own hard timeout).
CANCEL_BUDGET = 30.0


def cancel_and_settle(
    client: VecInfClient,
    job: str | ServerHandle,
    timeout: float = TEARDOWN_TIMEOUT,
    on_sent: Callable[[], None] = lambda: None,
) -> list[str]:
    """Cancel a server (no-op for an ended one), then wait up to ``timeout`` s until Slurm runs
    no part of it. Returns the job ids still ending at the deadline (STOPPING: not a failure);
    raises if the cancel itself failed or was refused."""
    job_id = job.job_id if isinstance(job, ServerHandle) else job
    client.drop_lease(job_id)  # from now on the job ends either way: by the cancel or the lapse
    client.shutdown(job_id, wait=False)
    on_sent()
    try:
        wait_until_gone(client.backend, [job_id], timeout)
    except ShutdownPending as pending:
        return pending.running
    return []


class Outcome(StrEnum):
    GONE = "gone"  # cancelled (or had ended), and Slurm runs no part of it
    STOPPING = "stopping"  # cancelled; Slurm was still ending it when teardown stopped waiting
    FAILED = "failed"  # the cancel failed or never finished: the lease lapse ends it


@dataclass
class _Attempt:
    job_id: str
    model: str
    sent: bool = False
    settling: list[str] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None


def release_servers(
    servers: Sequence[ServerHandle | str],
    cluster: SlurmCluster | None = None,
    timeout: float = TEARDOWN_TIMEOUT,
) -> dict[str, Outcome]:
    """Shut servers down at once, each in its own thread: no Prefect API, bounded time (the
    cancel's budget plus ``timeout``), never raises. Logs what happened to each."""
    attempts = [
        _Attempt(
            server.job_id if isinstance(server, ServerHandle) else server,
            server.model_name if isinstance(server, ServerHandle) else "unknown",
        )
        for server in servers
    ]
    for attempt in attempts:
        attempt.thread = threading.Thread(
            target=_release, args=(attempt, cluster, timeout), name=f"release-{attempt.job_id}"
        )
        attempt.thread.daemon = True
        attempt.thread.start()
    deadline = time.monotonic() + CANCEL_BUDGET + timeout
    outcomes: dict[str, Outcome] = {}
    for attempt in attempts:
        assert attempt.thread is not None
        attempt.thread.join(max(0.0, deadline - time.monotonic()))
        outcomes[attempt.job_id] = _report(attempt, attempt.thread.is_alive(), timeout)
    return outcomes


def release_server(
    server: ServerHandle | str,
    cluster: SlurmCluster | None = None,
    timeout: float = TEARDOWN_TIMEOUT,
) -> bool:
    """Shut a server down with a plain client call: no Prefect API, bounded time, never raises.

    This is what ``finally`` blocks and crash hooks call, so teardown works while the API is
    unreachable or the process is being terminated. It stops renewing the server's lease, sends
    the cancel and waits up to ``timeout`` s for Slurm to run no part of the job. True once the
    cancel was sent (a server Slurm is still ending is stopping, not a failure); False if it
    failed, in which case the server stops by itself once its lease lapses.
    """
    job_id = server.job_id if isinstance(server, ServerHandle) else server
    return release_servers([server], cluster, timeout)[job_id] is not Outcome.FAILED


def _release(attempt: _Attempt, cluster: SlurmCluster | None, timeout: float) -> None:
    def sent() -> None:
        attempt.sent = True

    try:
        client = client_for(cluster)
        attempt.settling = cancel_and_settle(client, attempt.job_id, timeout, sent)
        if attempt.model == "unknown":
            attempt.model = client.status(attempt.job_id).model_name
    except BaseException as error:
        attempt.error = error


def _report(attempt: _Attempt, still_running: bool, timeout: float) -> Outcome:
    job_id = attempt.job_id
    if attempt.error is not None and not attempt.sent:
        logger.error(
            "shutdown of job %s failed: %s; its lease is no longer renewed, so it stops by "
            "itself once the lease lapses",
            job_id,
            attempt.error,
        )
        return Outcome.FAILED
    if not attempt.sent:
        logger.error(
            "shutdown of job %s did not get its cancel through within %.0f s; its lease is no "
            "longer renewed, so it stops by itself once the lease lapses",
            job_id,
            CANCEL_BUDGET + timeout,
        )
        return Outcome.FAILED
    emit_server_event("shutdown", job_id, attempt.model)
    if still_running or attempt.settling or attempt.error is not None:
        logger.info(
            "job %s: cancel sent; Slurm was still ending it after %.0f s (its KillWait and "
            "epilog); `status` says STOPPING until it is gone",
            job_id,
            timeout,
        )
        return Outcome.STOPPING
    logger.info("shut down job %s", job_id)
    return Outcome.GONE
