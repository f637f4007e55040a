"""Typed return values of the public API (also what ``--json-mode`` prints)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.server_status import ServerStatus, StatusResponse

__all__ = [
    "BatchLaunchResponse",
    "LaunchResponse",
    "MetricsResponse",
    "ServerStatus",
    "StatusResponse",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class LaunchResponse(_Model):
    job_id: str
    job_name: str
    model_name: str
    job_dir: str
    config: dict[str, Any]  # the launch config as written to the job's JSON (secrets redacted)
    # What the other calls take (key included, never dumped: --json-mode shows the fields above).
    handle: ServerHandle = Field(exclude=True)


class BatchLaunchResponse(_Model):
    job_id: str  # the het job's leader id
    job_name: str
    job_ids: list[str]  # one per model, "MAIN+OFFSET"
    model_names: list[str]
    servers: list[LaunchResponse]


class MetricsResponse(_Model):
    """One scrape of a READY server, with rates over the window since ``previous`` when given."""

    job_id: str
    model_name: str
    base_url: str
    timestamp: float
    metrics: Any  # vec_inf_flows.server.metrics.ServerMetrics
    snapshot: Any  # vec_inf_flows.server.metrics.MetricsSnapshot (pass back as ``previous``)
