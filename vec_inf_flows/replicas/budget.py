"""How many replicas may be asked of Slurm right now: a GPU budget and a replica cap.

Queue time on a GPU cluster grows with what you ask for, and a group that asks for more than
its share starves its neighbours (or the other models of an evaluation). The budget counts the
replicas that still hold or wait for resources (PENDING, LAUNCHING or READY), so a replacement
is only submitted once the replica it replaces has let go.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from vec_inf_flows.errors import ConfigError


@dataclass(frozen=True)
class GpuBudget:
    max_gpus: int | None = None  # GPUs all replicas of the group may hold at once
    max_replicas: int | None = None  # replicas (jobs) the group may have at once

    def __post_init__(self) -> None:
        for name, value in (("max GPUs", self.max_gpus), ("max replicas", self.max_replicas)):
            if value is not None and value < 1:
                raise ConfigError(f"The {name} of a replica group must be at least 1 ({value}).")

    def check(self, gpus_per_replica: int) -> None:
        """Refuse a budget that could never run a single replica (before anything is queued)."""
        if self.max_gpus is not None and gpus_per_replica > self.max_gpus:
            raise ConfigError(
                f"One replica needs {gpus_per_replica} GPUs but the budget allows "
                f"{self.max_gpus}: raise --max-gpus or use fewer GPUs per replica."
            )

    def room(self, active: int, gpus_per_replica: int) -> int:
        """How many more replicas may be submitted while ``active`` hold or await resources."""
        limits = []
        if self.max_replicas is not None:
            limits.append(self.max_replicas - active)
        if self.max_gpus is not None and gpus_per_replica > 0:
            limits.append(self.max_gpus // gpus_per_replica - active)
        return max(0, min(limits)) if limits else 1 << 30


class SharedBudget:
    """One budget for several groups (every model of an evaluation): thread-safe.

    Each group states what it holds (replicas holding or awaiting resources) whenever it polls,
    so the ledger follows the truth: a group whose replicas ended gives their room back at its
    next poll, one that was shut down gives it all back (``forget``). ``claim`` reserves the
    room for one more replica atomically, so two groups launching at once cannot both take the
    last GPU.
    """

    def __init__(self, max_gpus: int | None = None, max_replicas: int | None = None) -> None:
        self.limits = GpuBudget(max_gpus, max_replicas)
        self._held: dict[str, tuple[int, int]] = {}  # group id -> (replicas, GPUs per replica)
        self._lock = threading.Lock()

    def settle(self, group_id: str, active: int, gpus_per_replica: int) -> None:
        with self._lock:
            self._held[group_id] = (active, gpus_per_replica)

    def claim(self, group_id: str, active: int, gpus_per_replica: int) -> bool:
        """Reserve room for one more replica of ``group_id``, which now holds ``active``."""
        with self._lock:
            self._held[group_id] = (active, gpus_per_replica)
            if not self._fits(gpus_per_replica):
                return False
            self._held[group_id] = (active + 1, gpus_per_replica)
            return True

    def forget(self, group_id: str) -> None:
        with self._lock:
            self._held.pop(group_id, None)

    def held(self) -> tuple[int, int]:
        """Replicas and GPUs held across the groups right now."""
        with self._lock:
            return self._totals()

    def _totals(self) -> tuple[int, int]:
        replicas = sum(count for count, _ in self._held.values())
        gpus = sum(count * each for count, each in self._held.values())
        return replicas, gpus

    def _fits(self, gpus_per_replica: int) -> bool:
        replicas, gpus = self._totals()
        if self.limits.max_replicas is not None and replicas + 1 > self.limits.max_replicas:
            return False
        limit = self.limits.max_gpus
        return limit is None or gpus + gpus_per_replica <= limit
