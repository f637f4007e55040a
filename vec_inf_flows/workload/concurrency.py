"""How many requests to keep in flight, from what the server was launched with.

A vLLM server runs at most ``--max-num-seqs`` sequences at once; more in flight only queue
inside it, fewer leave batch slots idle. A small headroom above it covers the gap between one
request finishing and the next arriving, so the batch stays full.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.handle import MAX_NUM_SEQS_NAMES, max_num_seqs, positive_int

__all__ = ["DEFAULT_CONCURRENCY", "concurrency_for", "max_num_seqs", "max_num_seqs_from_job_json"]

DEFAULT_CONCURRENCY = 16  # when nothing says what the server can take
_NAMES = frozenset(MAX_NUM_SEQS_NAMES)


def max_num_seqs_from_job_json(path: str | Path) -> int | None:
    """Look through a job's JSON (however nested) for ``--max-num-seqs``."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"Cannot read job file {path}: {error.strerror}.") from None
    except ValueError:
        raise ConfigError(f"Job file {path} is not JSON.") from None
    return _search(data)


def concurrency_for(max_seqs: Iterable[int | None], headroom: float = 1.25) -> int:
    """Total in-flight requests for a set of replicas (unknown ones count as the default)."""
    total = 0
    for seqs in max_seqs:
        total += max(1, round(seqs * headroom)) if seqs else DEFAULT_CONCURRENCY
    return max(1, total)


class Window:
    """At most ``limit`` requests in flight; the limit follows the replicas that are live.

    A semaphore whose size can change: when a replica joins the window grows by what it can
    take, when one leaves it shrinks (requests already in flight finish first). It never
    drops below one, so a run with no replica left still reaches the point where it learns
    that none is coming. Waiters are served first come, first served.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted, then cancelled: give back
                self.release()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._grant()

    def resize(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)


def _search(node: object) -> int | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NAMES:
                return positive_int(value)
        children: Iterable[object] = node.values()
    elif isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and node[0] in _NAMES:
            return positive_int(node[1])
        children = node
    else:
        return None
    for child in children:
        found = _search(child)
        if found is not None:
            return found
    return None
