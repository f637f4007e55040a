"""The status of a replica group: one word for the group, one row per member, the endpoint.

The group is READY as soon as one replica is (and the router, when there is one, answers):
that is when work can start. The endpoint is the router's address; ``endpoint_workers`` are
the replicas the router currently sends traffic to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx
from pydantic import BaseModel, ConfigDict

from vec_inf_flows.errors import ServerError, SlurmTransientError
from vec_inf_flows.models import ServerStatus, StatusResponse
from vec_inf_flows.replicas.group import ReplicaGroup

log = logging.getLogger("vec_inf_flows.replicas")


class GroupStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    group_id: str
    model_name: str
    group_status: ServerStatus
    replicas_wanted: int
    replicas_ready: int
    endpoint: str | None = None  # the router's OpenAI base URL, once it answers
    endpoint_workers: list[str] | None = None  # what the router sends traffic to
    replicas: list[StatusResponse]  # every replica ever launched, replaced ones included
    router: StatusResponse | None = None
    directory: str
    ended_because: str | None = None

    @property
    def terminal(self) -> bool:
        return self.group_status in (ServerStatus.FAILED, ServerStatus.SHUTDOWN)


def group_status(group: ReplicaGroup) -> GroupStatus:
    replicas, router = group.statuses()
    ready = sum(status.server_status is ServerStatus.READY for status in replicas)
    endpoint = router.base_url if router and router.server_status is ServerStatus.READY else None
    record = group.record
    return GroupStatus(
        group_id=record.group_id,
        model_name=record.model_name,
        group_status=overall(replicas, router, ended=record.ended_at is not None),
        replicas_wanted=record.replicas,
        replicas_ready=ready,
        endpoint=endpoint,
        endpoint_workers=router_workers(endpoint) if endpoint else None,
        replicas=replicas,
        router=router,
        directory=record.directory,
        ended_because=record.ended_because,
    )


def overall(
    replicas: Sequence[StatusResponse], router: StatusResponse | None, *, ended: bool
) -> ServerStatus:
    if ended:  # shut down (members may take a few seconds to stop)
        return ServerStatus.SHUTDOWN
    states = {status.server_status for status in replicas}
    router_state = router.server_status if router is not None else ServerStatus.READY
    if ServerStatus.READY in states and router_state is ServerStatus.READY:
        return ServerStatus.READY
    if router_state in (ServerStatus.FAILED, ServerStatus.SHUTDOWN):
        return router_state  # replicas without their endpoint are not what was asked for
    if ServerStatus.READY in states or ServerStatus.LAUNCHING in states:
        return ServerStatus.LAUNCHING
    if ServerStatus.PENDING in states:
        return ServerStatus.PENDING
    if not states:
        return ServerStatus.SHUTDOWN
    return ServerStatus.FAILED if ServerStatus.FAILED in states else ServerStatus.SHUTDOWN


def router_workers(endpoint: str, timeout: float = 3.0) -> list[str] | None:
    """The workers the router lists (its admin API needs no key); None if it does not answer."""
    root = endpoint.rstrip("/").removesuffix("/v1")
    try:
        reply = httpx.get(root + "/list_workers", timeout=timeout, trust_env=False)
        reply.raise_for_status()
        return sorted(str(url) for url in reply.json().get("urls", []))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def usable(status: GroupStatus) -> bool:
    """Work can start: a replica is READY and, with a router, the router sends it traffic."""
    if status.group_status is not ServerStatus.READY:
        return False
    return status.router is None or bool(status.endpoint_workers)


def wait_until_usable(
    group: ReplicaGroup,
    timeout: float = 1800.0,
    poll_interval: float = 5.0,
    on_status: Callable[[GroupStatus], None] | None = None,
) -> GroupStatus:
    """Poll until the first replica can take work (never for all of them); raise on failure."""
    deadline = time.monotonic() + timeout
    delay = min(0.5, poll_interval)
    last: GroupStatus | None = None
    while True:
        try:
            last = group_status(group)
        except SlurmTransientError as error:
            log.warning("status of %s unavailable for now (%s)", group.group_id, error)
        else:
            if on_status is not None:
                on_status(last)
            if usable(last):
                return last
            if last.terminal:
                reasons = "; ".join(
                    f"{s.job_id}: {s.failed_reason or s.detail or s.server_status.value}"
                    for s in [*last.replicas, *([last.router] if last.router else [])]
                )
                raise ServerError(
                    f"Replica group {group.group_id} is {last.group_status.value}: {reasons}"
                )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = last.group_status.value if last else "unknown"
            raise ServerError(
                f"Replica group {group.group_id} not ready after {timeout:.0f} s "
                f"(last status: {state})."
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, poll_interval)
