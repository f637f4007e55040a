"""How a server's life is bounded by its owner's: leases, ownership, the reaper's decision,
shutdown records, and held jobs a failed launch left behind. Prefect-free."""

from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
from vec_inf_flows.lifecycle.owner import JobOrigin, OwnerRecord, shutdown_refusal
from vec_inf_flows.lifecycle.reaper import (
    LeaseState,
    OwnerRun,
    ReapAction,
    ReapDecision,
    RunLookup,
    decide_reap,
)

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
