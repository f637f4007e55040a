"""Spreading requests over several READY servers, and noticing when one dies.

Each request goes to the live replica with the fewest requests outstanding, which follows each
server's real speed without having to measure it. A replica that refuses connections is taken
out at once; one that keeps failing (5xx, dropped connections, timeouts) is taken out after
``failure_threshold`` failures in a row. Either way the attempts still in flight on it are
cancelled and go to the others without counting as a failed attempt.

Replicas may join while the run goes on (``add``: a replica group reports them as they become
READY, so work starts on the first), may be retired from outside (``retire``: the group saw
its job end) or drained (``drain``: the group releases it once what it holds has finished).
A caller's hook may relaunch a failed replica and hand back the new one. When no
replica is left and none is coming, ``acquire`` raises instead of letting every remaining request
fail: unfinished ids stay unwritten, so a rerun picks them up.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vec_inf_flows.errors import ServerError

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """One server: its OpenAI base URL (``http://host:port/v1``)."""

    base_url: str
    max_concurrency: int | None = None  # its --max-num-seqs, when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


ReplacementHook = Callable[[Replica, str], "Replica | Awaitable[Replica | None] | None"]
CapacityHook = Callable[[Sequence[Replica]], None]


class Outcome(StrEnum):
    """What one attempt says about the replica's health (not the request's)."""

    OK = "ok"  # answered, even with a 4xx: the server is alive
    SOFT_FAILURE = "soft"  # 5xx, dropped connection, timeout
    REFUSED = "refused"  # nothing is listening: the server is gone


@dataclass(eq=False)
class ReplicaState:
    replica: Replica
    outstanding: int = 0
    held_tokens: int = 0  # the max_tokens of what it holds: how long its tail may run
    consecutive_failures: int = 0
    sent: int = 0
    alive: bool = True
    removed_because: str | None = None
    in_flight: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)
    idle: asyncio.Event | None = None  # set once a drained replica holds nothing


class NoLiveReplicaError(ServerError):
    pass


@dataclass
class ReplicaPool:
    replicas: Sequence[Replica] = ()
    failure_threshold: int = 10
    on_replica_failed: ReplacementHook | None = None
    # True while more replicas may still join (a replica group is provisioning them).
    expecting: bool = False
    on_capacity: CapacityHook | None = None  # called with the live replicas when they change
    states: list[ReplicaState] = field(init=False)

    def __post_init__(self) -> None:
        if not self.replicas and not self.expecting:
            raise ServerError("No server to send requests to: give at least one base URL.")
        self.states = [ReplicaState(replica) for replica in self.replicas]
        self._changed = asyncio.Condition()
        self._replacing: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> list[ReplicaState]:
        return [state for state in self.states if state.alive]

    async def acquire(self, max_tokens: int = 0) -> ReplicaState:
        """The live replica with the fewest outstanding requests (waits for one to join);
        ``max_tokens`` is the request's (given back by ``release``)."""
        async with self._changed:
            while True:
                live = self.live
                if live:
                    chosen = min(live, key=lambda state: (state.outstanding, state.sent))
                    chosen.outstanding += 1
                    chosen.held_tokens += max_tokens
                    chosen.sent += 1
                    return chosen
                if not self._replacing and not self.expecting:
                    raise NoLiveReplicaError(f"Every server failed ({self._reasons()}).")
                await self._changed.wait()

    async def first_replica(self) -> Replica:
        """Wait until some replica is live (without taking a slot on it)."""
        state = await self.acquire()
        state.outstanding -= 1
        state.sent -= 1
        return state.replica

    def release(
        self, state: ReplicaState, outcome: Outcome, detail: str = "", max_tokens: int = 0
    ) -> None:
        state.outstanding -= 1
        state.held_tokens -= max_tokens
        if state.idle is not None and state.outstanding <= 0:
            state.idle.set()
        if outcome is Outcome.OK:
            state.consecutive_failures = 0
            return
        state.consecutive_failures += 1
        if not state.alive:
            return
        if outcome is Outcome.REFUSED:
            self._take_out(state, f"connection refused ({detail})" if detail else "refused")
        elif state.consecutive_failures >= self.failure_threshold:
            self._take_out(state, f"{state.consecutive_failures} failures in a row ({detail})")

    def track(self, state: ReplicaState, attempt: asyncio.Future[Any]) -> None:
        """Remember an attempt in flight, so retiring its replica can move it elsewhere."""
        state.in_flight.add(attempt)
        attempt.add_done_callback(state.in_flight.discard)

    async def add(self, replica: Replica) -> bool:
        """Put a (re)launched server into rotation; a base URL already seen is ignored."""
        async with self._changed:
            if any(state.replica.base_url == replica.base_url for state in self.states):
                return False
            self.states.append(ReplicaState(replica))
            self._changed.notify_all()
        self._capacity_changed()
        return True

    async def retire(self, base_url: str, reason: str) -> bool:
        """Take a replica out because its job ended (no relaunch hook: the caller replaces it)."""
        url = base_url.rstrip("/")
        for state in self.states:
            if state.alive and state.replica.base_url == url:
                self._remove(state, reason)
                await self._notify()
                return True
        return False

    async def drain(self, base_url: str | None, reason: str, idle: asyncio.Event) -> str | None:
        """Send a replica nothing new; what it holds finishes there (nothing is moved or sent
        twice); ``idle`` is set once it holds nothing (at once for a URL never seen). Without
        ``base_url``: the live replica likely to be done first (the least ``max_tokens`` held,
        then the fewest requests), never the last one: one long generation outlasts many short
        ones. Returns the URL drained."""
        live = self.live
        if base_url is None:
            soonest = min(live, key=lambda s: (s.held_tokens, s.outstanding))
            state = soonest if len(live) > 1 else None
        else:
            url = base_url.rstrip("/")
            state = next((s for s in live if s.replica.base_url == url), None)
        if state is None:
            idle.set()
            return None
        state.alive = False
        state.removed_because = reason
        state.idle = idle
        if state.outstanding <= 0:
            idle.set()
        _log.info("draining %s: %s", state.replica.base_url, reason)
        self._capacity_changed()
        await self._notify()
        return state.replica.base_url

    async def finish(self) -> None:
        """No more replicas will join: waiting stops once the live ones are gone."""
        self.expecting = False
        await self._notify()

    async def close(self) -> None:
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)

    def _reasons(self) -> str:
        return (
            "; ".join(f"{state.replica.base_url}: {state.removed_because}" for state in self.states)
            or "no server ever became ready"
        )

    def _take_out(self, state: ReplicaState, reason: str) -> None:
        self._remove(state, reason)
        if self.on_replica_failed is not None:
            task = asyncio.get_running_loop().create_task(self._replace(state.replica, reason))
            self._replacing.add(task)

    def _remove(self, state: ReplicaState, reason: str) -> None:
        state.alive = False
        state.removed_because = reason
        _log.warning("taking %s out of rotation: %s", state.replica.base_url, reason)
        for attempt in list(state.in_flight):  # they go to the other replicas
            attempt.cancel()
        self._capacity_changed()

    def _capacity_changed(self) -> None:
        if self.on_capacity is not None:
            self.on_capacity([state.replica for state in self.live])

    async def _replace(self, replica: Replica, reason: str) -> None:
        hook = self.on_replica_failed
        assert hook is not None
        try:
            if inspect.iscoroutinefunction(hook):
                produced = await hook(replica, reason)
            else:  # a blocking relaunch (sbatch, wait until READY) must not stall the loop
                produced = await asyncio.to_thread(hook, replica, reason)
                if inspect.isawaitable(produced):
                    produced = await produced
            if isinstance(produced, Replica):
                await self.add(produced)
        except Exception:
            _log.exception("replacing %s failed", replica.base_url)
        finally:
            current = asyncio.current_task()
            if current is not None:
                self._replacing.discard(current)
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
