"""The contract every backend keeps.

One ``query`` call answers for any number of jobs: the status of fifty servers costs one round
trip to the scheduler, not fifty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from vec_inf_flows.jobs import JobRecord


class Backend(Protocol):
    name: str

    def submit(self, script: str, job_name: str, *, hold: bool = True) -> str:
        """Submit script text under a unique job name; return the (leader) job id.

        With ``hold`` the job waits until ``release``, so its log directory and records exist
        before it can start. An ambiguous failure is resolved by looking the name up; it never
        leaves a second job behind.
        """
        ...

    def release(self, job_id: str) -> None: ...

    def query(
        self, job_ids: Sequence[str], *, submitted_after: datetime | None = None
    ) -> dict[str, JobRecord]:
        """Records for the given ids in one call (a het-job leader id yields every component).

        Ids the backend no longer knows are simply absent from the result.
        """
        ...

    def list_jobs(self, name_suffix: str | None = None) -> list[JobRecord]:
        """The current user's jobs still known to the scheduler, optionally by name pattern."""
        ...

    def find_by_name(self, job_name: str) -> list[str]: ...

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel; ids that already ended are not an error."""
        ...
