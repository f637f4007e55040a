"""Elastic groups: as many replicas as the backlog can keep busy, within the group's maximum.

A long evaluation's tail (the last few hundred requests, a handful of long generations) keeps
one replica busy while the others idle on their GPUs; a deep backlog, on the other hand, is
worth every replica the budget allows. The rule is one line: a replica is worth holding while
the requests not yet answered give it ``windows_per_replica`` full windows of work (a window:
the requests one replica runs at once). The watcher grows the group towards that number and
drains the surplus (a drained replica finishes what it holds, then its job is stopped).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from vec_inf_flows.errors import ConfigError


@dataclass(frozen=True)
class ElasticPolicy:
    min_replicas: int = 1
    windows_per_replica: float = 2.0

    def __post_init__(self) -> None:
        if self.min_replicas < 1:
            raise ConfigError(f"An elastic group keeps at least 1 replica ({self.min_replicas}).")
        if not self.windows_per_replica > 0:
            raise ConfigError("windows_per_replica must be more than 0.")

    def wanted(self, backlog: int, window: int, most: int) -> int:
        """Replicas worth holding for ``backlog`` requests, ``window`` at once on each."""
        least = min(self.min_replicas, most)
        needed = math.ceil(max(backlog, 0) / (max(window, 1) * self.windows_per_replica))
        return max(least, min(most, needed))


class Backlog:
    """Requests not answered yet, across the datasets a group will serve (thread-safe).

    ``expect`` announces a dataset's size before it runs (so the group does not shrink between
    two datasets); ``progress`` reports how far the current one is.
    """

    def __init__(self) -> None:
        self._left: dict[str, int] = {}
        self._lock = threading.Lock()

    def expect(self, key: str, total: int) -> None:
        with self._lock:
            self._left.setdefault(key, max(total, 0))

    def progress(self, key: str, done: int, total: int | None) -> None:
        with self._lock:
            if total is not None:
                self._left[key] = max(total - done, 0)

    def remaining(self) -> int | None:
        """None until anything was announced: the group then keeps its size."""
        with self._lock:
            return sum(self._left.values()) if self._left else None
