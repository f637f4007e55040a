"""A drop-in for ``vec_inf.client``: vec-inf 0.9.0's Python API on top of vec-inf-flows.

    from vec_inf.client import VecInfClient          # vec-inf
    from vec_inf_flows.compat import VecInfClient    # the same code, on vec-inf-flows

Also here, as in ``vec_inf.client``: ``LaunchOptions``, ``LaunchResponse``,
``BatchLaunchResponse``, ``StatusResponse``, ``MetricsResponse``, ``ModelInfo``,
``ModelStatus``, ``ModelType``, ``ModelConfig``, and vec-inf's exception names. Names load on
first use, so ``shapes`` (the JSON shapes) costs the CLI nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows import errors
from vec_inf_flows._lazy import lazy_exports

if TYPE_CHECKING:
    from vec_inf_flows.catalog.schema import ModelConfig
    from vec_inf_flows.compat.client import VecInfClient
    from vec_inf_flows.compat.models import (
        BatchLaunchResponse,
        LaunchOptions,
        LaunchResponse,
        MetricsResponse,
        ModelInfo,
        ModelStatus,
        ModelType,
        StatusResponse,
    )

# vec-inf's exception names (vec_inf.client._exceptions), as this project's errors.
ModelConfigurationError = errors.ConfigError
MissingRequiredFieldsError = errors.ConfigError
ModelNotFoundError = errors.ModelNotFoundError
SlurmJobError = errors.SlurmError
ServerError = errors.ServerError


class APIError(errors.VecInfError):
    """Declared by vec-inf and never raised; here for ``except`` clauses that name it."""


_MODELS = (
    "BatchLaunchResponse",
    "LaunchOptions",
    "LaunchResponse",
    "MetricsResponse",
    "ModelInfo",
    "ModelStatus",
    "ModelType",
    "StatusResponse",
)

__all__ = [
    "APIError",
    "BatchLaunchResponse",
    "LaunchOptions",
    "LaunchResponse",
    "MetricsResponse",
    "MissingRequiredFieldsError",
    "ModelConfig",
    "ModelConfigurationError",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelStatus",
    "ModelType",
    "ServerError",
    "SlurmJobError",
    "StatusResponse",
    "VecInfClient",
]


_HOMES = {
    "VecInfClient": "vec_inf_flows.compat.client",
    "ModelConfig": "vec_inf_flows.catalog.schema",
    **{name: "vec_inf_flows.compat.models" for name in _MODELS},
}

__getattr__ = lazy_exports(__name__, _HOMES)
