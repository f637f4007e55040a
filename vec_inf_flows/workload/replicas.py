"""Spreading requests over several READY servers, and noticing when one dies.

Each request goes to the live replica with the fewest requests outstanding, which follows each
server's real speed without having to measure it. A replica that refuses connections is taken
out at once; one that keeps failing (5xx, dropped connections, timeouts) is taken out after
``failure_threshold`` failures in a row. A caller's hook may relaunch it and hand back the new
one. When no replica is left and none is coming, ``acquire`` raises instead of letting every
remaining request fail: unfinished ids stay unwritten, so a rerun picks them up.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

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


class Outcome(StrEnum):
    """What one attempt says about the replica's health (not the request's)."""

    OK = "ok"  # answered, even with a 4xx: the server is alive
    SOFT_FAILURE = "soft"  # 5xx, dropped connection, timeout
    REFUSED = "refused"  # nothing is listening: the server is gone


@dataclass
class ReplicaState:
    replica: Replica
    outstanding: int = 0
    consecutive_failures: int = 0
    sent: int = 0
    alive: bool = True
    removed_because: str | None = None


class NoLiveReplicaError(ServerError):
    pass


@dataclass
class ReplicaPool:
    replicas: Sequence[Replica]
    failure_threshold: int = 10
    on_replica_failed: ReplacementHook | None = None
    states: list[ReplicaState] = field(init=False)

    def __post_init__(self) -> None:
        if not self.replicas:
            raise ServerError("No server to send requests to: give at least one base URL.")
        self.states = [ReplicaState(replica) for replica in self.replicas]
        self._changed = asyncio.Condition()
        self._replacing: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> list[ReplicaState]:
        return [state for state in self.states if state.alive]

    async def acquire(self) -> ReplicaState:
        """The live replica with the fewest outstanding requests (waits for a replacement)."""
        async with self._changed:
            while True:
                live = self.live
                if live:
                    chosen = min(live, key=lambda state: (state.outstanding, state.sent))
                    chosen.outstanding += 1
                    chosen.sent += 1
                    return chosen
                if not self._replacing:
                    reasons = "; ".join(
                        f"{state.replica.base_url}: {state.removed_because}"
                        for state in self.states
                    )
                    raise NoLiveReplicaError(f"Every server failed ({reasons}).")
                await self._changed.wait()

    def release(self, state: ReplicaState, outcome: Outcome, detail: str = "") -> None:
        state.outstanding -= 1
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

    async def add(self, replica: Replica) -> None:
        """Put a (re)launched server into rotation."""
        async with self._changed:
            self.states.append(ReplicaState(replica))
            self._changed.notify_all()

    async def close(self) -> None:
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)

    def _take_out(self, state: ReplicaState, reason: str) -> None:
        state.alive = False
        state.removed_because = reason
        _log.warning("taking %s out of rotation: %s", state.replica.base_url, reason)
        if self.on_replica_failed is not None:
            task = asyncio.get_running_loop().create_task(self._replace(state.replica, reason))
            self._replacing.add(task)

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
