"""Who launched a job, and whether this tool may shut it down.

Every job launched here records its owner in its JSON (``owner``): user, host, process and,
when the caller says so, the Prefect API URL and flow run id (plain strings: the core never
imports Prefect). The reaper reads it to decide whether the owner is provably gone; ``shutdown``
uses how the job was recognised (``vec_inf_flows.origin``) to refuse jobs this tool did not
launch.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TOOL = "vec-inf-flows"


class OwnerRecord(BaseModel):
    """The process that launched a job (and, for flows, the flow run on its Prefect server)."""

    model_config = ConfigDict(frozen=True)

    user: str = Field(description="User that launched the job.")
    host: str = Field(description="Host the launching process ran on.")
    pid: int = Field(description="Process id of the launching process on that host.")
    started_at: float = Field(
        description="The owner's clock when it launched (for people; never compared)."
    )
    tool: str = Field(default=TOOL, description="The tool that launched it.")
    prefect_api_url: str | None = Field(
        default=None, description="API URL of the Prefect server of the owning flow run."
    )
    flow_run_id: str | None = Field(default=None, description="Id of the owning flow run.")

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
