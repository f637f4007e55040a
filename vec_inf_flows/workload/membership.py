"""Replicas joining and leaving a run while it goes on.

A replica group reports its servers as they become READY and as their jobs end, and asks for
one to be drained before it releases it (an elastic group whose backlog shrank); the runner
applies those changes to its pool. The stream of changes ends when no more replicas will come
(the group gave up or was told to stop), which lets the run fail cleanly once the last live
replica is gone instead of waiting forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass, field

from vec_inf_flows.workload.replicas import Replica, ReplicaPool


@dataclass(frozen=True)
class Joined:
    """A server became READY: send it work."""

    replica: Replica


@dataclass(frozen=True)
class Left:
    """A server's job ended (or was released): stop sending it work, move what it holds."""

    base_url: str
    reason: str


@dataclass(frozen=True)
class Drain:
    """Release one server (the backlog no longer needs it): send it nothing new, let what it
    holds finish there, and set ``idle`` once it holds nothing. Without ``base_url`` the pool
    picks the live server holding the fewest requests and names it in ``chosen``."""

    base_url: str | None
    reason: str
    idle: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    chosen: list[str] = field(default_factory=list, compare=False)


MembershipChange = Joined | Left | Drain
Membership = AsyncIterable[MembershipChange]


async def follow(changes: Membership, pool: ReplicaPool) -> None:
    """Apply every change to the pool; when the stream ends, tell the pool none are coming."""
    try:
        async for change in changes:
            if isinstance(change, Joined):
                await pool.add(change.replica)
            elif isinstance(change, Drain):
                chosen = await pool.drain(change.base_url, change.reason, change.idle)
                change.chosen.extend([chosen] if chosen else [])
            else:
                await pool.retire(change.base_url, change.reason)
    finally:
        await pool.finish()
