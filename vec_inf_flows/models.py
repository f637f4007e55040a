"""Typed return values of the public API (also what ``--json-mode`` prints)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vec_inf_flows.handle import ServerHandle


class ServerStatus(StrEnum):
    PENDING = "PENDING"  # submitted, waiting for resources (see pending_reason)
    LAUNCHING = "LAUNCHING"  # job running, server not answering /health yet
    READY = "READY"  # /health answered 200; base_url is set
    FAILED = "FAILED"  # the server or its job failed (see failed_reason)
    SHUTDOWN = "SHUTDOWN"  # cancelled, timed out, completed or forgotten by Slurm


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


class StatusResponse(_Model):
    job_id: str
    model_name: str
    server_status: ServerStatus
    base_url: str | None = None  # only when READY, e.g. http://node1:41234/v1
    pending_reason: str | None = None
    failed_reason: str | None = None
    # Why a server is SHUTDOWN ("cancelled", "time limit reached" ...), or what a LAUNCHING
    # server is still waiting for (e.g. "/health: connection refused").
    detail: str | None = None
    slurm_state: str | None = None  # the scheduler's raw word, when it still knows the job
    node: str | None = None
    job_dir: str | None = None

    @property
    def terminal(self) -> bool:
        return self.server_status in (ServerStatus.FAILED, ServerStatus.SHUTDOWN)


class MetricsResponse(_Model):
    """One scrape of a READY server, with rates over the window since ``previous`` when given."""

    job_id: str
    model_name: str
    base_url: str
    timestamp: float
    metrics: Any  # vec_inf_flows.server.metrics.ServerMetrics
    snapshot: Any  # vec_inf_flows.server.metrics.MetricsSnapshot (pass back as ``previous``)
