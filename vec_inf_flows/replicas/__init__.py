"""Replicas: N independent jobs serving one model, elastic within a budget, one endpoint.

Prefect-free, like the client: ``ReplicaGroup.launch`` submits the replicas (through
``VecInfClient.launch``) and optionally a router job; ``GroupWatcher`` follows them for a
running workload (READY ones join, dead ones are replaced); ``group_status`` and
``ReplicaGroup.shutdown`` serve the CLI's ``status`` and ``shutdown`` of a group id.

Names load on first use: ``status`` checks every id for the group form and must not import the
group machinery (pydantic) to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows._lazy import lazy_exports

if TYPE_CHECKING:
    from vec_inf_flows.replicas.budget import GpuBudget
    from vec_inf_flows.replicas.group import ReplicaGroup
    from vec_inf_flows.replicas.ids import is_group_id
    from vec_inf_flows.replicas.plan import ReplicaPlan, RouterSettings
    from vec_inf_flows.replicas.record import GroupRecord, Member, Role
    from vec_inf_flows.replicas.status import GroupStatus, group_status
    from vec_inf_flows.replicas.watcher import EventKind, GroupWatcher, ReplicaEvent

_HOMES = {
    "GpuBudget": "vec_inf_flows.replicas.budget",
    "ReplicaGroup": "vec_inf_flows.replicas.group",
    "ReplicaPlan": "vec_inf_flows.replicas.plan",
    "RouterSettings": "vec_inf_flows.replicas.plan",
    "GroupRecord": "vec_inf_flows.replicas.record",
    "Member": "vec_inf_flows.replicas.record",
    "Role": "vec_inf_flows.replicas.record",
    "is_group_id": "vec_inf_flows.replicas.ids",
    "GroupStatus": "vec_inf_flows.replicas.status",
    "group_status": "vec_inf_flows.replicas.status",
    "EventKind": "vec_inf_flows.replicas.watcher",
    "GroupWatcher": "vec_inf_flows.replicas.watcher",
    "ReplicaEvent": "vec_inf_flows.replicas.watcher",
}

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


__getattr__ = lazy_exports(__name__, _HOMES)
