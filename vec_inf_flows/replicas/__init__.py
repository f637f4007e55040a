"""Replicas: N independent jobs serving one model, elastic within a budget, one endpoint.

Prefect-free, like the client: ``ReplicaGroup.launch`` submits the replicas (through
``VecInfClient.launch``) and optionally a router job; ``GroupWatcher`` follows them for a
running workload (READY ones join, dead ones are replaced); ``group_status`` and
``ReplicaGroup.shutdown`` serve the CLI's ``status`` and ``shutdown`` of a group id.
"""

from vec_inf_flows.replicas.budget import GpuBudget
from vec_inf_flows.replicas.group import ReplicaGroup
from vec_inf_flows.replicas.plan import ReplicaPlan, RouterSettings
from vec_inf_flows.replicas.record import GroupRecord, Member, Role, is_group_id
from vec_inf_flows.replicas.status import GroupStatus, group_status
from vec_inf_flows.replicas.watcher import EventKind, GroupWatcher, ReplicaEvent

__all__ = [
    "EventKind",
    "GpuBudget",
    "GroupRecord",
    "GroupStatus",
    "GroupWatcher",
    "Member",
    "ReplicaEvent",
    "ReplicaGroup",
    "ReplicaPlan",
    "Role",
    "RouterSettings",
    "group_status",
    "is_group_id",
]
