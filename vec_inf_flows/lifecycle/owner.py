"""Who launched a job, and whether this tool may shut it down.

Every job launched here records its owner in its JSON (``owner``): user, host, process and,
when the caller says so, the Prefect API URL and flow run id (plain strings: the core never
imports Prefect). The reaper reads it to decide whether the owner is provably gone; ``shutdown``
uses how the job was recognised to refuse jobs this tool did not launch.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from vec_inf_flows.jobs import JobRecord
from vec_inf_flows.models import ServerStatus, StatusResponse

TOOL = "vec-inf-flows"


class OwnerRecord(BaseModel):
    """The process that launched a job (and, for flows, the flow run on its Prefect server)."""

    model_config = ConfigDict(frozen=True)

    user: str
    host: str
    pid: int
    started_at: float  # the owner's clock when it launched: for people, never compared
    tool: str = TOOL
    prefect_api_url: str | None = None
    flow_run_id: str | None = None

    @classmethod
    def current(
        cls, *, prefect_api_url: str | None = None, flow_run_id: str | None = None
    ) -> OwnerRecord:
        return cls(
            user=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=time.time(),
            prefect_api_url=prefect_api_url or None,
            flow_run_id=flow_run_id or None,
        )

    @classmethod
    def from_job_json(cls, config: dict[str, Any] | None) -> OwnerRecord | None:
        """The owner a job's JSON names; None for jobs launched before owners were recorded."""
        raw = (config or {}).get("owner")
        if not isinstance(raw, dict):
            return None
        try:
            return cls.model_validate(raw)
        except ValueError:
            return None

    def describe(self) -> str:
        where = f"{self.user}@{self.host} pid {self.pid}"
        return f"{where}, flow run {self.flow_run_id}" if self.flow_run_id else where


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class JobOrigin(StrEnum):
    """How a job id was recognised."""

    OURS = "vec-inf-flows"  # our job record (index + job JSON), or our job-name marker
    VEC_INF = "vec-inf"  # launched by vec-inf itself (its log layout): a server we can manage
    FOREIGN = "foreign"  # a Slurm job neither tool launched (e.g. ``sbatch --wrap``)


# Our job names carry this between the model name and a random token.
JOB_NAME_MARKER = "-vec-inf-"


def origin_of(record: JobRecord, has_job_record: bool) -> JobOrigin:
    """Ours: our job record names it, or our job-name marker does (its job dir may be gone)."""
    if has_job_record or JOB_NAME_MARKER in record.name:
        return JobOrigin.OURS
    return JobOrigin.FOREIGN


def foreign_status(job_id: str, record: JobRecord) -> StatusResponse:
    """What status says of a job that is no server of ours: so, not an invented state."""
    return StatusResponse(
        job_id=job_id,
        model_name=record.name or "unknown",
        server_status=ServerStatus.FOREIGN,
        detail=f"not launched by vec-inf-flows or vec-inf (job name {record.name!r})",
        slurm_state=record.state,
        node=record.node,
    )


def shutdown_refusal(job_id: str, origin: JobOrigin, *, force: bool = False) -> str | None:
    """Why ``shutdown`` must not cancel this job, or None when it may.

    Servers launched by this tool or by vec-inf are ours to stop (teams switch with servers
    running); any other job is refused unless ``force`` says the user means it.
    """
    if origin is JobOrigin.FOREIGN and not force:
        return (
            f"Job {job_id} was not launched by vec-inf-flows or vec-inf; refusing to cancel it "
            "(pass --force to cancel it anyway)."
        )
    return None
