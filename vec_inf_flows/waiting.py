"""Waiting for a server to become READY: one polling loop, used by the client and the tasks.

Polls start fast (0.5 s) and back off to the caller's interval; FAILED, STOPPING, SHUTDOWN or
FOREIGN end the wait at once; a transient scheduler error is logged and polling goes on, since
the job itself is unaffected by its controller being away for a moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from vec_inf_flows.errors import ServerError, SlurmTransientError
from vec_inf_flows.server_status import ServerStatus, StatusResponse

log = logging.getLogger("vec_inf_flows.client")


def poll_until_ready(
    status_of: Callable[[str], StatusResponse],
    job_id: str,
    timeout: float,
    poll_interval: float,
    on_status: Callable[[StatusResponse], None] | None = None,
) -> StatusResponse:
    """The READY status of ``job_id``; ServerError on FAILED, SHUTDOWN or the timeout."""
    deadline = time.monotonic() + timeout
    delay = min(0.5, poll_interval)
    last: StatusResponse | None = None
    while True:
        try:
            last = status_of(job_id)
        except SlurmTransientError as error:
            log.warning("status of %s unavailable for now (%s); still waiting", job_id, error)
        else:
            if on_status is not None:
                on_status(last)
            if last.server_status is ServerStatus.READY:
                return last
            if last.never_ready:
                reason = last.failed_reason or last.detail or "no reason recorded"
                raise ServerError(
                    f"Server {job_id} ({last.model_name}) is {last.server_status.value} "
                    f"before becoming ready: {reason}"
                )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = last.server_status.value if last else "unknown"
            raise ServerError(
                f"Server {job_id} not ready after {timeout:.0f} s (last status: {state})."
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, poll_interval)
