"""How many replicas may be asked of Slurm right now: a GPU budget and a replica cap.

Queue time on a GPU cluster grows with what you ask for, and a group that asks for more than
its share starves its neighbours (or the other models of an evaluation). The budget counts the
replicas that still hold or wait for resources (PENDING, LAUNCHING or READY), so a replacement
is only submitted once the replica it replaces has let go.
"""

from __future__ import annotations

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
