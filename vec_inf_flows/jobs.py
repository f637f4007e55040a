"""Job identity and backend-neutral job records.

Backends (Slurm, local processes) translate their own state names into ``JobPhase`` in one
table each; everything above the backends reasons about phases only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from vec_inf_flows.errors import InvalidJobIdError

_JOB_ID = re.compile(r"^(?P<main>\d{1,18})(?:\+(?P<offset>\d{1,4}))?$")


@dataclass(frozen=True, order=True)
class JobId:
    """A Slurm job id, or one component ``MAIN+OFFSET`` of a heterogeneous job."""

    main: int
    offset: int | None = None

    @classmethod
    def parse(cls, value: str | int | JobId) -> JobId:
        if isinstance(value, JobId):
            return value
        match = _JOB_ID.fullmatch(str(value).strip())
        if match is None:
            raise InvalidJobIdError(str(value))
        offset = match.group("offset")
        return cls(int(match.group("main")), int(offset) if offset is not None else None)

    def __str__(self) -> str:
        return str(self.main) if self.offset is None else f"{self.main}+{self.offset}"

    def component(self, offset: int) -> JobId:
        return JobId(self.main, offset)


class JobPhase(StrEnum):
    """Where a job is in its life, whatever runs it."""

    PENDING = "PENDING"  # queued, held, requeued, suspended: not running yet
    RUNNING = "RUNNING"  # allocated and running (configuring counts)
    ENDING = "ENDING"  # completing / stage-out: outcome not final yet
    COMPLETED = "COMPLETED"  # ended with exit code 0
    CANCELLED = "CANCELLED"  # cancelled by a user or an admin
    FAILED = "FAILED"  # failed, timed out, out of memory, node failure, preempted ...
    UNKNOWN = "UNKNOWN"  # a state name we do not know: never crash, never guess

    @property
    def terminal(self) -> bool:
        return self in (JobPhase.COMPLETED, JobPhase.CANCELLED, JobPhase.FAILED)


@dataclass(frozen=True)
class JobRecord:
    """What a backend knows about one job (or one het-job component)."""

    job_id: str  # "123" or "123+1"
    name: str  # the job name given at submission
    phase: JobPhase
    state: str  # the backend's raw state word, e.g. "TIMEOUT", "CANCELLED by 0"
    reason: str | None = None  # pending reason, or why it ended
    exit_code: str | None = None  # "exit:signal" as Slurm prints it, when known
    node: str | None = None  # host that runs the job's first (batch) step
    source: str = "squeue"  # "squeue", "sacct" or "local"
