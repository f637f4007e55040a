"""Following a replica group while work runs on it: who is READY, who died, who replaces them.

One poll is one bulk status call (one ``squeue`` for every replica) plus their health checks. A
replica is reported the moment it is READY, never after waiting for the others (queue times
differ by hours on a busy cluster). One that ends (FAILED, or SHUTDOWN: cancelled, timed out) is
reported lost, its job is cancelled if Slurm still runs it (a FAILED engine can leave the job
holding its GPUs), and a replacement is submitted while the relaunch budget and the GPU budget
allow. The watcher is exhausted when nothing is running, pending or allowed to be launched.

An elastic group (``elastic`` and a ``backlog``) aims at the replicas its backlog can keep busy:
it grows towards that number and releases the surplus, queued replicas first (cancelled), then
READY ones, which a running workload drains before their jobs are stopped.
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
from vec_inf_flows.replicas.elastic import Backlog, ElasticPolicy
from vec_inf_flows.replicas.group import ReplicaGroup
from vec_inf_flows.workload.concurrency import concurrency_for
from vec_inf_flows.workload.membership import Drain, Joined, Left, MembershipChange
from vec_inf_flows.workload.replicas import Replica

log = logging.getLogger("vec_inf_flows.replicas")
_STILL_HELD = ("RUNNING", "PENDING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED")


class EventKind(StrEnum):
    READY = "ready"
    LOST = "lost"
    LAUNCHED = "launched"
    RELEASING = "releasing"  # the backlog no longer needs it: drain it, then stop its job
    RELEASED = "released"  # a released replica's job has ended


@dataclass(frozen=True)
class ReplicaEvent:
    kind: EventKind
    job_id: str
    base_url: str | None = None
    detail: str = ""


EventHook = Callable[[ReplicaEvent], None]


class GroupWatcher:
    def __init__(
        self,
        group: ReplicaGroup,
        on_event: EventHook | None = None,
        *,
        elastic: ElasticPolicy | None = None,
        backlog: Backlog | None = None,
    ) -> None:
        self.group = group
        self.on_event = on_event
        self.elastic = elastic
        self.backlog = backlog
        self.target = group.plan.replicas  # replicas to aim at (moves with an elastic backlog)
        self.ready: dict[str, str] = {}  # job id -> base URL
        self.gone: dict[str, str] = {}  # job id -> why
        self.releasing: dict[str, str | None] = {}  # job id -> base URL, released on purpose
        self.releasing_reason: dict[str, str] = {}
        self.stop_sent: set[str] = set()  # released replicas whose job was told to stop
        self.to_drain = 0  # READY replicas a running workload should drain and give back
        self.replacements_used = sum(1 for m in group.record.replica_members if m.replaces)
        self.peak_serving = 0
        self.reason = ""  # why replicas are being released
        self.stopped = False
        self._following = False  # a run is draining the replicas released meanwhile

    # ------------------------------------------------------------------ state
    @property
    def active(self) -> list[str]:
        """Replicas that hold or wait for resources."""
        return [job_id for job_id in self.group.replica_ids() if job_id not in self.gone]

    @property
    def serving(self) -> list[str]:
        """Active replicas that are not being released."""
        return [job_id for job_id in self.active if job_id not in self.releasing]

    @property
    def lost(self) -> list[str]:
        """Replicas that died (not released) and have no replacement yet."""
        replaced = {m.replaces for m in self.group.record.replica_members if m.replaces}
        return [
            job_id
            for job_id in self.gone
            if job_id not in self.releasing and job_id not in replaced
        ]

    @property
    def exhausted(self) -> bool:
        return not self.active and not self._may_grow(0)

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
        self.group.settle(len(self.active))
        events += self._retarget()
        events += self._top_up()
        self.peak_serving = max(self.peak_serving, len(self.serving))
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
            if job_id in self.releasing:  # released while it started: stop it now
                self._stop_job(job_id)
                return None
            return ReplicaEvent(EventKind.READY, job_id, status.base_url)
        if not status.terminal:
            return None
        why = status.failed_reason or status.detail or status.server_status.value
        if job_id in self.releasing:
            self.gone[job_id] = "released"
            return ReplicaEvent(EventKind.RELEASED, job_id, self.ready.get(job_id))
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

    # ------------------------------------------------------------------ growing
    def _may_grow(self, serving: int) -> bool:
        """Whether a replica may be launched now that ``serving`` are (budget aside)."""
        if self.stopped or self.group.record.ended_at is not None:
            return False
        deficit = self.target - serving
        if deficit <= 0:
            return False
        return deficit > len(self.lost) or self.replacements_used < self.group.plan.relaunch_budget

    def _top_up(self) -> list[ReplicaEvent]:
        """Fill the deficit: growth first (free), then replacements (from the relaunch budget)."""
        events: list[ReplicaEvent] = []
        while self._may_grow(len(self.serving)):
            lost = self.lost
            replaces = lost[0] if self.target - len(self.serving) <= len(lost) else None
            if not self.group.claim(len(self.active)):
                break
            try:
                member = self.group.launch_replica(replaces=replaces)
            except VecInfError as error:
                log.warning("group %s: launch failed: %s", self.group.group_id, error)
                break
            if replaces is not None:
                self.replacements_used += 1
            events.append(ReplicaEvent(EventKind.LAUNCHED, member.job_id, detail=replaces or ""))
        return events

    # ------------------------------------------------------------------ shrinking
    def window(self) -> int:
        """Requests one replica runs at once (with the runner's headroom)."""
        return concurrency_for([self.group.max_concurrency])

    def _retarget(self) -> list[ReplicaEvent]:
        if self.elastic is None or self.backlog is None or self.stopped:
            return []
        backlog = self.backlog.remaining()
        if backlog is None:
            return []
        most = self.group.plan.replicas
        self.target = self.elastic.wanted(backlog, self.window(), most)
        surplus = len(self.serving) - self.target
        self.to_drain = 0
        if surplus <= 0:
            return []
        self.reason = f"backlog of {backlog} needs {self.target} replica(s)"
        queued = [job_id for job_id in reversed(self.serving) if job_id not in self.ready]
        events = [self.release(job_id) for job_id in queued[:surplus]]
        surplus -= len(events)
        if self._following:  # the run drains the idlest ones (``changes``)
            self.to_drain = surplus
            return events
        ready = [job_id for job_id in reversed(self.serving) if job_id in self.ready]
        return events + [self.release(job_id) for job_id in ready[:surplus]]

    def release(self, job_id: str, drained: bool = False) -> ReplicaEvent:
        """Give a replica back: no replacement for it; its job is stopped now, or once the run
        draining it says it holds nothing (``drained``)."""
        url = self.ready.get(job_id)
        self.releasing[job_id] = url
        self.releasing_reason[job_id] = self.reason
        if not drained:
            self._stop_job(job_id)
        return ReplicaEvent(EventKind.RELEASING, job_id, url, self.reason)

    def _stop_job(self, job_id: str) -> None:
        if job_id in self.stop_sent:
            return
        self.stop_sent.add(job_id)
        try:
            self.group.client.shutdown(job_id, wait=False)
        except VecInfError as error:
            log.warning("group %s: could not release %s: %s", self.group.group_id, job_id, error)

    def _stop_drained(self) -> None:
        """Released replicas nobody is draining any more (no run is sending them work)."""
        for job_id in list(self.releasing):
            if job_id not in self.gone:
                self._stop_job(job_id)

    def _job_at(self, urls: list[str]) -> str | None:
        wanted = {url.rstrip("/") for url in urls}
        return next((job for job, url in self.ready.items() if url.rstrip("/") in wanted), None)

    # ------------------------------------------------------------------ for the runner
    async def changes(
        self, interval: float = 1.0, ready_timeout: float | None = None
    ) -> AsyncIterator[MembershipChange]:
        """Joined/Left/Drain for the workload runner; ends when the group is exhausted or
        stopped, or (with ``ready_timeout``) when no replica was READY in that many seconds.

        Starts with the replicas already READY, so one watcher can feed run after run (a flow
        runs its dataset chunk by chunk, each chunk a run of its own).
        """
        await asyncio.to_thread(self._stop_drained)
        self._following = True
        try:
            async for change in self._changes(interval, ready_timeout):
                yield change
        finally:
            self._following = False

    async def _changes(
        self, interval: float, ready_timeout: float | None
    ) -> AsyncIterator[MembershipChange]:
        seqs = self.group.max_concurrency
        for job_id, base_url in list(self.ready.items()):
            if job_id not in self.gone and job_id not in self.releasing:
                yield Joined(Replica(base_url, seqs))
        deadline = None if ready_timeout is None else time.monotonic() + ready_timeout
        draining: dict[str, asyncio.Event] = {}
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
            for _ in range(self.to_drain):  # the pool picks the replica holding the least
                drain = Drain(None, self.reason)
                yield drain  # applied by the time the runner asks for the next change
                chosen = self._job_at(drain.chosen)
                if chosen is None:
                    break
                event = self.release(chosen, drained=True)
                if self.on_event is not None:
                    self.on_event(event)
                draining[chosen] = drain.idle
            self.to_drain = 0
            for job_id, idle in list(draining.items()):
                if idle.is_set():  # what it held has finished: its GPUs can go
                    del draining[job_id]
                    await asyncio.to_thread(self._stop_job, job_id)
            if self.exhausted:
                return
            await asyncio.sleep(interval)
