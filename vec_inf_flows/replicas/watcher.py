"""Following a replica group while work runs on it: who is READY, who died, who replaces them.

One poll is one bulk status call (one ``squeue`` for every replica) plus their health checks. A
replica is reported the moment it is READY, never after waiting for the others (queue times
differ by hours on a busy cluster). One that ends (FAILED, or SHUTDOWN: cancelled, timed out) is
reported lost, its job is cancelled if Slurm still runs it (a FAILED engine can leave the job
holding its GPUs), and a replacement is submitted while the relaunch budget and the GPU budget
allow. The watcher is exhausted when nothing is running, pending or allowed to be launched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from vec_inf_flows.errors import SlurmTransientError, VecInfError
from vec_inf_flows.models import ServerStatus, StatusResponse
from vec_inf_flows.replicas.group import ReplicaGroup
from vec_inf_flows.workload.membership import Joined, Left, MembershipChange
from vec_inf_flows.workload.replicas import Replica

log = logging.getLogger("vec_inf_flows.replicas")
_STILL_HELD = ("RUNNING", "PENDING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED")


class EventKind(StrEnum):
    READY = "ready"
    LOST = "lost"
    LAUNCHED = "launched"


@dataclass(frozen=True)
class ReplicaEvent:
    kind: EventKind
    job_id: str
    base_url: str | None = None
    detail: str = ""


EventHook = Callable[[ReplicaEvent], None]


class GroupWatcher:
    def __init__(self, group: ReplicaGroup, on_event: EventHook | None = None) -> None:
        self.group = group
        self.on_event = on_event
        self.ready: dict[str, str] = {}  # job id -> base URL
        self.gone: dict[str, str] = {}  # job id -> why
        launched = len(group.replica_ids())
        self.replacements_used = max(0, launched - group.plan.replicas)
        self.stopped = False

    # ------------------------------------------------------------------ state
    @property
    def active(self) -> list[str]:
        """Replicas that hold or wait for resources."""
        return [job_id for job_id in self.group.replica_ids() if job_id not in self.gone]

    @property
    def exhausted(self) -> bool:
        return not self.active and (self.stopped or not self._may_launch(0))

    def stop(self) -> None:
        """Launch nothing more (the work is done, or the caller is tearing down)."""
        self.stopped = True

    # ------------------------------------------------------------------ one poll
    def poll(self) -> list[ReplicaEvent]:
        ids = self.active
        try:
            statuses = self.group.client.statuses(ids) if ids else []
        except SlurmTransientError as error:
            log.warning("group %s: status unavailable for now (%s)", self.group.group_id, error)
            return []
        events: list[ReplicaEvent] = []
        for status in statuses:
            event = self._observe(status)
            if event is not None:
                events.append(event)
        events += self._top_up()
        for event in events:
            log.info("group %s: replica %s %s", self.group.group_id, event.job_id, event.kind)
            if self.on_event is not None:
                self.on_event(event)
        return events

    def _observe(self, status: StatusResponse) -> ReplicaEvent | None:
        job_id = status.job_id
        if status.server_status is ServerStatus.READY and status.base_url:
            if job_id in self.ready:
                return None
            self.ready[job_id] = status.base_url
            return ReplicaEvent(EventKind.READY, job_id, status.base_url)
        if not status.terminal:
            return None
        why = status.failed_reason or status.detail or status.server_status.value
        self.gone[job_id] = why
        self._release_if_held(status)
        return ReplicaEvent(EventKind.LOST, job_id, self.ready.get(job_id), why)

    def _release_if_held(self, status: StatusResponse) -> None:
        state = (status.slurm_state or "").split(" ")[0]
        if state in _STILL_HELD:
            try:
                self.group.client.backend.cancel([status.job_id])
            except VecInfError as error:
                log.warning("could not cancel failed replica %s: %s", status.job_id, error)

    def _may_launch(self, active: int) -> bool:
        plan = self.group.plan
        if self.stopped or self.group.record.ended_at is not None:
            return False
        if active >= plan.replicas or self.group.room(active) <= 0:
            return False
        first_round = len(self.group.replica_ids()) < plan.replicas
        return first_round or self.replacements_used < plan.relaunch_budget

    def _top_up(self) -> list[ReplicaEvent]:
        events: list[ReplicaEvent] = []
        lost = [job_id for job_id in self.gone if not self._replaced(job_id)]
        while self._may_launch(len(self.active)):
            replaces = lost.pop(0) if lost else None
            if len(self.group.replica_ids()) >= self.group.plan.replicas:
                self.replacements_used += 1
            try:
                member = self.group.launch_replica(replaces=replaces)
            except VecInfError as error:
                log.warning("group %s: relaunch failed: %s", self.group.group_id, error)
                break
            events.append(ReplicaEvent(EventKind.LAUNCHED, member.job_id, detail=replaces or ""))
        return events

    def _replaced(self, job_id: str) -> bool:
        return any(m.replaces == job_id for m in self.group.record.replica_members)

    # ------------------------------------------------------------------ for the runner
    async def changes(
        self, interval: float = 1.0, ready_timeout: float | None = None
    ) -> AsyncIterator[MembershipChange]:
        """Joined/Left for the workload runner; ends when the group is exhausted or stopped,
        or (with ``ready_timeout``) when no replica was READY in that many seconds.

        Starts with the replicas already READY, so one watcher can feed run after run (a flow
        runs its dataset chunk by chunk, each chunk a run of its own).
        """
        seqs = self.group.max_concurrency
        for job_id, base_url in list(self.ready.items()):
            if job_id not in self.gone:
                yield Joined(Replica(base_url, seqs))
        deadline = None if ready_timeout is None else time.monotonic() + ready_timeout
        while True:
            if deadline is not None and not self.ready and time.monotonic() > deadline:
                log.warning(
                    "group %s: no replica READY after %.0f s", self.group.group_id, ready_timeout
                )
                self.stop()
                return
            for event in await asyncio.to_thread(self.poll):
                if event.kind is EventKind.READY and event.base_url:
                    yield Joined(Replica(event.base_url, seqs))
                elif event.kind is EventKind.LOST and event.base_url:
                    yield Left(event.base_url, f"job {event.job_id}: {event.detail}")
            if self.exhausted:
                return
            await asyncio.sleep(interval)
