"""vec-inf-flows: OpenAI-compatible inference servers on Slurm, as retryable Prefect tasks.

Importing the package is cheap and never imports Prefect; ``VecInfClient`` and the models load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows._lazy import lazy_exports

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


_HOMES = {
    "VecInfClient": "vec_inf_flows.client",
    "LeaseKeeper": "vec_inf_flows.lifecycle",
    "LeasePolicy": "vec_inf_flows.lifecycle",
    "OwnerRecord": "vec_inf_flows.lifecycle",
    "ServerHandle": "vec_inf_flows.handle",
    "ServerStatus": "vec_inf_flows.models",
    "StatusResponse": "vec_inf_flows.models",
    "LaunchResponse": "vec_inf_flows.models",
    "MetricsResponse": "vec_inf_flows.models",
}

__getattr__ = lazy_exports(__name__, _HOMES)
