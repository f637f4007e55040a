"""Local job facts -> ``JobRecord``, in Slurm's words, so status reads local jobs like any other.

Pure: the caller says whether the job's process group is alive; everything else is in the
stored records. The one table of this backend (see ``jobs.JobPhase``):

==========================================  =========  ==========================================
facts                                       phase      state / reason / exit code
==========================================  =========  ==========================================
not started, not cancelled                  PENDING    PENDING / JobHeldUser
cancelled before it started                 CANCELLED  CANCELLED
exit record, cancelled before it ended      CANCELLED  CANCELLED / exit code as recorded
exit 0                                      COMPLETED  COMPLETED / 0:0
exit N > 0                                  FAILED     FAILED / NonZeroExitCode / N:0
killed by signal N                          FAILED     FAILED / NonZeroExitCode / 0:N
running                                     RUNNING    RUNNING
running, cancel under way                   ENDING     COMPLETING
gone without an exit record, cancelled      CANCELLED  CANCELLED
gone without an exit record                 FAILED     FAILED / lost
==========================================  =========  ==========================================
"""

from __future__ import annotations

from vec_inf_flows.backends.local.store import Ended, StoredJob
from vec_inf_flows.jobs import JobPhase, JobRecord

HELD_REASON = "JobHeldUser"
LOST_REASON = "lost"
SOURCE = "local"


def slurm_exit_code(exit_code: int) -> str:
    """``exit:signal`` as Slurm prints it."""
    return f"0:{-exit_code}" if exit_code < 0 else f"{exit_code}:0"


def _record(
    job: StoredJob,
    phase: JobPhase,
    state: str,
    reason: str | None = None,
    ended: Ended | None = None,
) -> JobRecord:
    return JobRecord(
        job_id=job.job_id,
        name=job.name,
        phase=phase,
        state=state,
        reason=reason,
        exit_code=slurm_exit_code(ended.exit_code) if ended is not None else None,
        node=job.started.node if job.started is not None else None,
        source=SOURCE,
    )


def _finished(job: StoredJob, ended: Ended) -> JobRecord:
    if job.cancel_time is not None and job.cancel_time <= ended.end_time:
        return _record(job, JobPhase.CANCELLED, "CANCELLED", ended=ended)
    if ended.exit_code == 0:
        return _record(job, JobPhase.COMPLETED, "COMPLETED", ended=ended)
    return _record(job, JobPhase.FAILED, "FAILED", "NonZeroExitCode", ended)


def to_record(job: StoredJob, alive: bool) -> JobRecord:
    """``alive``: whether the job's group still has a live process (ignored before start)."""
    if job.ended is not None:
        return _finished(job, job.ended)
    cancelled = job.cancel_time is not None
    if job.started is None:
        if cancelled:
            return _record(job, JobPhase.CANCELLED, "CANCELLED")
        return _record(job, JobPhase.PENDING, "PENDING", HELD_REASON)
    if alive:
        if cancelled:
            return _record(job, JobPhase.ENDING, "COMPLETING")
        return _record(job, JobPhase.RUNNING, "RUNNING")
    if cancelled:
        return _record(job, JobPhase.CANCELLED, "CANCELLED")
    return _record(job, JobPhase.FAILED, "FAILED", LOST_REASON)
