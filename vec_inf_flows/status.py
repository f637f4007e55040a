"""The status decision: scheduler record + log verdict + /health + job-dir evidence -> status.

Pure, so every rule is a row in a test table. The rules, and why:

* ``READY`` needs a /health 200. A 200 is trusted over log text: vLLM answers /health only after
  start-up and answers 503 (or not at all) once its engine is dead, so a live 200 means a live
  server even if some log line looked fatal (the anchor cancelled healthy jobs over log words).
* A running job whose logs show a fatal line, or whose engine has exited, is ``FAILED`` at
  once, while Slurm still says RUNNING (the launcher may still be tearing down). So is a server
  that was READY and has not answered /health for the grace period (the job-side watch
  records it): ``wait`` returns at once instead of blocking to its timeout.
* The job side's own verdict (a ``vec-inf:`` line, e.g. "a node of this multi-node server
  died") is ``FAILED`` even while /health still answers 200: the head may answer for seconds
  after another node died, and the job is already stopping it.
* A ready line with /health not answering 200 stays ``LAUNCHING`` (``detail`` says what /health
  said): the probe may race the server; a real death shows up as a fatal line or an engine exit.
* ``SHUTDOWN`` only once no part of the job runs any more. A job being stopped (a shutdown whose
  cancel succeeded, a lapsed lease, an idle timeout) is ``STOPPING`` while Slurm still runs it or
  says COMPLETING. A shutdown marker counts only once the cancel succeeded (it is written as
  unconfirmed first), so a failed ``scancel`` never makes a running server look shut down.
* A server that had FAILED stays FAILED with its reason after a shutdown (the marker keeps it).
* An ended job (or one the scheduler forgot) is ``SHUTDOWN`` with the reason (shut down on
  request, owner stopped renewing its lease, idle, cancelled, time limit, completed, forgotten)
  unless there is evidence of failure: a failure state of the scheduler, a fatal log line, an
  engine exit code that is not a termination signal, or a server that had stopped answering.
* Never "UNAVAILABLE", never "unknown": an unknown scheduler state is judged by the evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows.jobs import JobPhase, JobRecord
from vec_inf_flows.lifecycle.evidence import JobEvidence
from vec_inf_flows.server_status import ServerStatus, StatusResponse

if TYPE_CHECKING:
    from vec_inf_flows.server.http import HealthResult
    from vec_inf_flows.server.logscan import LogVerdict

# Scheduler states that are a failure of the job itself, with the words a user reads.
_FAILURE_STATES = {
    "FAILED": "job failed",
    "OUT_OF_MEMORY": "job ran out of memory",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failed to boot",
}
# Scheduler states that end a job without it having failed.
_END_STATES = {
    "TIMEOUT": "time limit reached",
    "DEADLINE": "deadline reached",
    "PREEMPTED": "preempted by the scheduler",
    "CANCELLED": "cancelled",
    "REVOKED": "cancelled",
    "COMPLETED": "job completed",
}
# Exit codes of an engine stopped by a signal (negative: Python's Popen; 128+n: a shell).
_TERMINATION_EXITS = {-2, -9, -15, 130, 137, 143}


def _state_word(record: JobRecord | None) -> str:
    return record.state.split()[0].upper() if record and record.state.strip() else ""


def _engine_failed(engine_exit: int | None) -> bool:
    return engine_exit is not None and engine_exit != 0 and engine_exit not in _TERMINATION_EXITS


def _ended(
    record: JobRecord | None,
    verdict: LogVerdict | None,
    shutdown_requested: bool,
    engine_exit: int | None,
    evidence: JobEvidence,
) -> tuple[ServerStatus, str]:
    """Status and reason for a job that has ended or is gone from the scheduler."""
    if evidence.shutdown is not None and evidence.shutdown.failed_reason:
        return ServerStatus.FAILED, evidence.shutdown.failed_reason
    if shutdown_requested:
        return ServerStatus.SHUTDOWN, "shut down on request"
    if evidence.stopped is not None:
        return ServerStatus.SHUTDOWN, evidence.stopped.reason
    state = _state_word(record)
    fatal = verdict.fatal_line if verdict else None
    if state in _FAILURE_STATES:
        reason = _FAILURE_STATES[state]
        if record is not None and record.exit_code and state == "FAILED":
            reason += f" (exit code {record.exit_code})"
        return ServerStatus.FAILED, fatal or reason
    if fatal:
        return ServerStatus.FAILED, fatal
    if _engine_failed(engine_exit):
        return ServerStatus.FAILED, f"engine exited with code {engine_exit}"
    if evidence.unresponsive:
        return ServerStatus.FAILED, evidence.unresponsive
    if verdict is not None and verdict.time_limit_hit:
        return ServerStatus.SHUTDOWN, "time limit reached"
    if state in _END_STATES:
        return ServerStatus.SHUTDOWN, _END_STATES[state]
    if verdict is not None and verdict.cancelled:
        return ServerStatus.SHUTDOWN, "cancelled"
    if record is None:
        return ServerStatus.SHUTDOWN, "job no longer known to Slurm"
    return ServerStatus.SHUTDOWN, "job ended"


def _stopping(record: JobRecord | None, status: ServerStatus, reason: str) -> dict[str, object]:
    """A job Slurm still runs or says COMPLETING: FAILED stays, anything else is STOPPING."""
    if status is ServerStatus.FAILED:
        return {"server_status": status, "failed_reason": reason}
    state = record.state.split()[0] if record and record.state.strip() else "ENDING"
    if reason == "job ended":
        reason = "job ending"
    return {"server_status": ServerStatus.STOPPING, "detail": f"{reason} (Slurm: {state})"}


def _running(
    verdict: LogVerdict | None,
    health: HealthResult | None,
    server_address: str | None,
    engine_exit: int | None,
    unresponsive: str | None,
) -> dict[str, object]:
    fatal = verdict.fatal_line if verdict else None
    if engine_exit is not None:
        reason = fatal or f"engine exited with code {engine_exit}"
        return {"server_status": ServerStatus.FAILED, "failed_reason": reason}
    if verdict is not None and verdict.job_failure:
        return {"server_status": ServerStatus.FAILED, "failed_reason": fatal or verdict.job_failure}
    if health is not None and health.ok and server_address:
        return {"server_status": ServerStatus.READY, "base_url": server_address}
    if unresponsive:
        return {"server_status": ServerStatus.FAILED, "failed_reason": unresponsive}
    if fatal:
        return {"server_status": ServerStatus.FAILED, "failed_reason": fatal}
    if not server_address:
        detail = "waiting for the server address"
    elif health is None:
        detail = "health not checked yet" if verdict is not None and verdict.ready else "starting"
    elif verdict is not None and verdict.ready:
        detail = f"started, but /health: {health.error}"
    else:
        detail = f"starting (/health: {health.error})"
    return {"server_status": ServerStatus.LAUNCHING, "detail": detail}


def decide(
    job_id: str,
    model_name: str,
    record: JobRecord | None,
    verdict: LogVerdict | None,
    health: HealthResult | None,
    server_address: str | None,
    shutdown_requested: bool,
    engine_exit: int | None,
    *,
    job_dir: str | None = None,
    evidence: JobEvidence | None = None,
) -> StatusResponse:
    """One job's status from everything known about it (see the module docstring).

    ``shutdown_requested`` means a shutdown whose cancel succeeded; ``evidence`` is what the
    job dir says beyond that (the job-side watch's records, the failure kept by a shutdown).
    """
    seen = evidence or JobEvidence()
    base: dict[str, object] = {
        "job_id": job_id,
        "model_name": model_name,
        "slurm_state": record.state if record else None,
        "node": record.node if record else None,
        "job_dir": job_dir,
    }
    phase = record.phase if record else None
    if phase is JobPhase.PENDING:
        fields: dict[str, object] = {
            "server_status": ServerStatus.PENDING,
            "pending_reason": record.reason if record else None,
        }
    elif phase in (JobPhase.RUNNING, JobPhase.UNKNOWN, JobPhase.ENDING):
        stopping = shutdown_requested or seen.stopped is not None or phase is JobPhase.ENDING
        failed_before = seen.shutdown is not None and seen.shutdown.failed_reason
        if stopping or failed_before:
            ended = _ended(record, verdict, shutdown_requested, engine_exit, seen)
            fields = _stopping(record, *ended)
        else:
            fields = _running(verdict, health, server_address, engine_exit, seen.unresponsive)
    else:
        status, reason = _ended(record, verdict, shutdown_requested, engine_exit, seen)
        key = "failed_reason" if status is ServerStatus.FAILED else "detail"
        fields = {"server_status": status, key: reason}
    return StatusResponse.model_validate({**base, **fields})
