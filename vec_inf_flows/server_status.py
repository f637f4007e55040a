"""A server's status: the state names and the record ``status`` returns.

Plain dataclasses, not pydantic: ``vec-inf-flows status`` must answer in well under 0.1 s and
importing pydantic alone costs more than that budget allows. Nothing here needs validating (the
status decision builds these from checked parts), and the record offers the read side of
pydantic's API (``model_dump``, ``model_dump_json``, ``model_copy``, ``model_validate``) so
callers treat it like the other responses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal


class ServerStatus(StrEnum):
    PENDING = "PENDING"  # submitted, waiting for resources (see pending_reason)
    LAUNCHING = "LAUNCHING"  # job running, server not answering /health yet
    READY = "READY"  # /health answered 200; base_url is set
    FAILED = "FAILED"  # the server or its job failed (see failed_reason)
    STOPPING = "STOPPING"  # being stopped (see detail); Slurm still runs or completes the job
    SHUTDOWN = "SHUTDOWN"  # no part of the job runs any more: cancelled, timed out, completed ...
    FOREIGN = "FOREIGN"  # a Slurm job neither vec-inf-flows nor vec-inf launched: no server


@dataclasses.dataclass(frozen=True)
class StatusResponse:
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

    def __post_init__(self) -> None:
        if not isinstance(self.server_status, ServerStatus):
            object.__setattr__(self, "server_status", ServerStatus(self.server_status))

    @property
    def terminal(self) -> bool:
        return self.server_status in (ServerStatus.FAILED, ServerStatus.SHUTDOWN)

    @property
    def never_ready(self) -> bool:
        """It will not become READY (any more): what ``wait`` returns at once on."""
        return self.terminal or self.server_status in (ServerStatus.STOPPING, ServerStatus.FOREIGN)

    @classmethod
    def model_validate(cls, data: Mapping[str, Any]) -> StatusResponse:
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"StatusResponse has no field(s) {', '.join(unknown)}")
        return cls(**data)

    def model_dump(self, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        dumped = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        if mode == "json":
            dumped["server_status"] = self.server_status.value
        return dumped

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"))

    def model_copy(self, update: Mapping[str, Any] | None = None) -> StatusResponse:
        return dataclasses.replace(self, **dict(update or {}))
