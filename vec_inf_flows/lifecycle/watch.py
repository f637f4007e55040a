"""What the job-side watch enforces for one job, written to its ``watch.json`` at launch."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vec_inf_flows import jobdir
from vec_inf_flows.lifecycle.evidence import DEFAULT_HEALTH_GRACE, WATCH_FILE
from vec_inf_flows.lifecycle.lease import LeasePolicy


class WatchConfig(BaseModel):
    """What the job-side watch enforces for one job (``watch.json``)."""

    model_config = ConfigDict(frozen=True)

    lease: LeasePolicy | None = None
    idle_timeout: float | None = Field(default=None, gt=0, description="seconds without requests")
    health_grace: float | None = Field(
        default=DEFAULT_HEALTH_GRACE,
        gt=0,
        description="seconds a READY server may not answer /health",
    )
    poll: float = Field(default=5.0, gt=0, description="seconds between the watch's checks")


def write_watch(directory: Path, config: WatchConfig) -> None:
    jobdir.write_json(directory / WATCH_FILE, config.model_dump(mode="json"))
