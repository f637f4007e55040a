"""What a replica group is asked to be: the model, how many replicas, the budget, the router."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.lifecycle.owner import OwnerRecord
from vec_inf_flows.replicas.budget import GpuBudget

RouterPlace = Literal["job", "local", "none"]
# Not power_of_two: vllm-router refuses to start it with fewer than two workers, and the
# router starts before any replica is READY.
RouterPolicy = Literal["round_robin", "random", "cache_aware"]


class RouterSettings(BaseModel):
    """The one OpenAI-compatible endpoint in front of the replicas (``vllm-router``).

    ``job``: its own small CPU job next to the replicas (same partition, account, QoS, time
    limit); ``local``: a local process on this machine (the local backend), e.g. a login node
    users can reach; ``none``: no endpoint, the workload runner balances by itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    place: RouterPlace = "none"
    policy: RouterPolicy = "round_robin"
    cpus_per_task: int = Field(default=1, ge=1)
    mem_per_node: str = "1G"
    health_check_interval_s: int = Field(default=5, ge=1)
    # Requests the router holds at once, and how many more it queues before answering 429.
    max_concurrent_requests: int = Field(default=4096, ge=1)
    queue_size: int = Field(default=1024, ge=0)
    python: str | None = None  # interpreter with vllm-router installed; default: the replicas'


class ReplicaPlan(BaseModel):
    """N independent jobs serving one model, kept at N within a relaunch and GPU budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    replicas: int = Field(default=1, ge=1, le=1024)
    options: LaunchOptions = Field(default_factory=LaunchOptions)
    api_key: SecretStr | None = None  # the key every replica requires (never dumped in clear)
    relaunches: int | None = Field(
        default=None, ge=0
    )  # replacements allowed; None: one per replica
    max_gpus: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)  # replicas holding or awaiting resources
    router: RouterSettings = Field(default_factory=RouterSettings)
    # Every member (replicas, replacements and the router job) carries this lease, renewed by
    # the launching client's keeper: the group ends by itself once its owner stops renewing.
    lease: LeasePolicy | None = None
    owner: OwnerRecord | None = None  # recorded in every member (default: this process)
    # Recorded in every member's job JSON (a flow's run id, so its hooks find the jobs).
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def budget(self) -> GpuBudget:
        return GpuBudget(self.max_gpus, self.max_concurrent)

    @property
    def relaunch_budget(self) -> int:
        return self.replicas if self.relaunches is None else self.relaunches
