"""How a server's life is bounded by its owner's: leases, ownership, the reaper's decision,
shutdown records, and held jobs a failed launch left behind. Prefect-free.

The names below load on first use: ``status`` imports ``lifecycle.evidence`` on every call and
must not pay for pydantic, which the lease and owner models need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows._lazy import lazy_exports

if TYPE_CHECKING:
    from vec_inf_flows.lifecycle.evidence import LeaseState
    from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
    from vec_inf_flows.lifecycle.owner import OwnerRecord
    from vec_inf_flows.lifecycle.reaper import (
        OwnerRun,
        ReapAction,
        ReapDecision,
        RunLookup,
        decide_reap,
    )
    from vec_inf_flows.origin import JobOrigin, shutdown_refusal

_HOMES = {
    "JobOrigin": "vec_inf_flows.origin",
    "shutdown_refusal": "vec_inf_flows.origin",
    "LeaseKeeper": "vec_inf_flows.lifecycle.lease",
    "LeasePolicy": "vec_inf_flows.lifecycle.lease",
    "LeaseState": "vec_inf_flows.lifecycle.evidence",
    "OwnerRecord": "vec_inf_flows.lifecycle.owner",
    "OwnerRun": "vec_inf_flows.lifecycle.reaper",
    "ReapAction": "vec_inf_flows.lifecycle.reaper",
    "ReapDecision": "vec_inf_flows.lifecycle.reaper",
    "RunLookup": "vec_inf_flows.lifecycle.reaper",
    "decide_reap": "vec_inf_flows.lifecycle.reaper",
}

__all__ = [
    "JobOrigin",
    "LeaseKeeper",
    "LeasePolicy",
    "LeaseState",
    "OwnerRecord",
    "OwnerRun",
    "ReapAction",
    "ReapDecision",
    "RunLookup",
    "decide_reap",
    "shutdown_refusal",
]


__getattr__ = lazy_exports(__name__, _HOMES)
