"""vec-inf-flows: OpenAI-compatible inference servers on Slurm, as retryable Prefect tasks.

Importing the package is cheap and never imports Prefect; ``VecInfClient`` and the models load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.handle import ServerHandle
    from vec_inf_flows.lifecycle import LeaseKeeper, LeasePolicy, OwnerRecord
    from vec_inf_flows.models import ServerStatus, StatusResponse

__all__ = [
    "LeaseKeeper",
    "LeasePolicy",
    "OwnerRecord",
    "ServerHandle",
    "ServerStatus",
    "StatusResponse",
    "VecInfClient",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "VecInfClient":
        from vec_inf_flows.client import VecInfClient

        return VecInfClient
    if name in ("LeasePolicy", "LeaseKeeper", "OwnerRecord"):
        from vec_inf_flows import lifecycle

        return getattr(lifecycle, name)
    if name == "ServerHandle":
        from vec_inf_flows.handle import ServerHandle

        return ServerHandle
    if name in ("ServerStatus", "StatusResponse", "LaunchResponse", "MetricsResponse"):
        from vec_inf_flows import models

        return getattr(models, name)
    raise AttributeError(f"module 'vec_inf_flows' has no attribute {name!r}")
