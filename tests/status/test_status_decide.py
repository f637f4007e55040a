"""``decide`` as a table: (scheduler record, log verdict, /health, markers) -> status."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest

from vec_inf_flows.jobs import JobPhase, JobRecord
from vec_inf_flows.lifecycle.evidence import JobEvidence, ShutdownRecord, StopRecord
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.server.http import HealthResult, check_health
from vec_inf_flows.server.logscan import LogVerdict
from vec_inf_flows.status import decide

ADDRESS = "http://kv1-gpu03:41234/v1"
OK = HealthResult("http://kv1-gpu03:41234/health", 200)
REFUSED = HealthResult("http://kv1-gpu03:41234/health", None, "connection refused")
DEAD = HealthResult("http://kv1-gpu03:41234/health", 503, "HTTP 503")
STARTING = LogVerdict()
READY_LOG = LogVerdict(ready=True)
KV_ERROR = "ValueError: To serve at least one request with the model's max seq len (200000)"
FATAL_LOG = LogVerdict(fatal_line=KV_ERROR)
DIED_AFTER_READY = LogVerdict(ready=True, fatal_line="EngineDeadError: EngineCore died")
TIME_LIMIT_LOG = LogVerdict(ready=True, time_limit_hit=True, shutdown_seen=True)
CANCEL_LOG = LogVerdict(ready=True, cancelled=True, shutdown_seen=True)
NODE_DIED = "node node2 (rank 1): vllm was killed by SIGKILL; stopping the server on every node"
NODE_DIED_LOG = LogVerdict(ready=True, fatal_line=NODE_DIED, job_failure=NODE_DIED)
LAPSE = "owner stopped renewing at 2025-05-01 12:00:00 UTC (lease of 300 s lapsed)"
LAPSED = JobEvidence(stopped=StopRecord("lease", LAPSE))
IDLE = JobEvidence(stopped=StopRecord("idle", "idle for 30 min (no requests)"))
SILENT = "not answering /health since 2025-05-01 12:00:00 UTC (grace 60 s)"
UNRESPONSIVE = JobEvidence(unresponsive=SILENT)
# A shutdown of a server that had already failed: the marker keeps the reason.
FAILED_THEN_SHUT = JobEvidence(shutdown=ShutdownRecord(1.0, True, KV_ERROR))


def record(
    phase: JobPhase,
    state: str | None = None,
    reason: str | None = None,
    exit_code: str | None = None,
) -> JobRecord:
    return JobRecord(
        job_id="42",
        name="SmolLM2-vec-inf-0123abcd",
        phase=phase,
        state=state or phase.value,
        reason=reason,
        exit_code=exit_code,
        node="vm-1",
    )


@dataclass(frozen=True)
class Case:
    name: str
    record: JobRecord | None
    verdict: LogVerdict | None = None
    health: HealthResult | None = None
    address: str | None = ADDRESS
    shutdown: bool = False
    engine_exit: int | None = None
    evidence: JobEvidence | None = None
    status: ServerStatus = ServerStatus.LAUNCHING
    reason: str | None = None  # failed_reason for FAILED, else detail / pending_reason


RUNNING = record(JobPhase.RUNNING)
CASES = [
    # Waiting for resources.
    Case(
        "pending",
        record(JobPhase.PENDING, reason="Resources"),
        status=ServerStatus.PENDING,
        reason="Resources",
    ),
    # Running: starting up.
    Case(
        "running, no address yet",
        RUNNING,
        STARTING,
        None,
        address=None,
        reason="waiting for the server address",
    ),
    Case(
        "running, refused",
        RUNNING,
        STARTING,
        REFUSED,
        reason="starting (/health: connection refused)",
    ),
    Case("running, health not checked", RUNNING, STARTING, None, reason="starting"),
    Case(
        "ready line, health not checked", RUNNING, READY_LOG, None, reason="health not checked yet"
    ),
    Case(
        "running, no logs readable",
        RUNNING,
        None,
        REFUSED,
        reason="starting (/health: connection refused)",
    ),
    # Running: ready.
    Case("ready line and 200", RUNNING, READY_LOG, OK, status=ServerStatus.READY),
    Case("200 wins over a log line", RUNNING, DIED_AFTER_READY, OK, status=ServerStatus.READY),
    Case("200 with unreadable logs", RUNNING, None, OK, status=ServerStatus.READY),
    Case(
        "ready line, health refused",
        RUNNING,
        READY_LOG,
        REFUSED,
        reason="started, but /health: connection refused",
    ),
    Case(
        "ready line, health 503", RUNNING, READY_LOG, DEAD, reason="started, but /health: HTTP 503"
    ),
    Case(
        "unknown scheduler word, ready",
        record(JobPhase.UNKNOWN, "WEIRD"),
        READY_LOG,
        OK,
        status=ServerStatus.READY,
    ),
    # Running: failed while Slurm still says RUNNING.
    Case(
        "fatal line while running",
        RUNNING,
        FATAL_LOG,
        REFUSED,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "engine died after ready",
        RUNNING,
        DIED_AFTER_READY,
        DEAD,
        status=ServerStatus.FAILED,
        reason="EngineDeadError: EngineCore died",
    ),
    Case(
        "engine exited, no log line",
        RUNNING,
        STARTING,
        REFUSED,
        engine_exit=1,
        status=ServerStatus.FAILED,
        reason="engine exited with code 1",
    ),
    Case(
        "engine exited with a log line",
        RUNNING,
        FATAL_LOG,
        REFUSED,
        engine_exit=1,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "a node of a multi-node server died: the head's 200 does not hide it",
        RUNNING,
        NODE_DIED_LOG,
        OK,
        status=ServerStatus.FAILED,
        reason=NODE_DIED,
    ),
    Case(
        "a node died, then the job ended",
        record(JobPhase.FAILED, "FAILED", exit_code="1:0"),
        NODE_DIED_LOG,
        status=ServerStatus.FAILED,
        reason=NODE_DIED,
    ),
    # Being stopped: SHUTDOWN only once no part of the job runs.
    Case(
        "cancelled on request, Slurm still runs it",
        RUNNING,
        READY_LOG,
        OK,
        shutdown=True,
        status=ServerStatus.STOPPING,
        reason="shut down on request (Slurm: RUNNING)",
    ),
    Case(
        "ending after a requested shutdown",
        record(JobPhase.ENDING, "COMPLETING"),
        READY_LOG,
        shutdown=True,
        engine_exit=143,
        status=ServerStatus.STOPPING,
        reason="shut down on request (Slurm: COMPLETING)",
    ),
    Case(
        "completing on its own",
        record(JobPhase.ENDING, "COMPLETING"),
        TIME_LIMIT_LOG,
        status=ServerStatus.STOPPING,
        reason="time limit reached (Slurm: COMPLETING)",
    ),
    Case(
        "lease lapsed, engine stopping",
        RUNNING,
        READY_LOG,
        REFUSED,
        evidence=LAPSED,
        status=ServerStatus.STOPPING,
        reason=f"{LAPSE} (Slurm: RUNNING)",
    ),
    Case(
        "lease lapsed, job ended cleanly",
        record(JobPhase.COMPLETED),
        READY_LOG,
        engine_exit=-15,
        evidence=LAPSED,
        status=ServerStatus.SHUTDOWN,
        reason=LAPSE,
    ),
    Case(
        "lease lapsed on a multi-node server: a node line while it stops is no failure",
        record(JobPhase.FAILED, "FAILED", exit_code="1:0"),
        NODE_DIED_LOG,
        engine_exit=-15,
        evidence=LAPSED,
        status=ServerStatus.SHUTDOWN,
        reason=LAPSE,
    ),
    Case(
        "lease lapsed, forgotten by Slurm",
        None,
        CANCEL_LOG,
        engine_exit=-15,
        evidence=LAPSED,
        status=ServerStatus.SHUTDOWN,
        reason=LAPSE,
    ),
    Case(
        "idle timeout",
        record(JobPhase.COMPLETED),
        READY_LOG,
        engine_exit=-15,
        evidence=IDLE,
        status=ServerStatus.SHUTDOWN,
        reason="idle for 30 min (no requests)",
    ),
    # A READY server that stopped answering /health for the grace period.
    Case(
        "not answering after ready",
        RUNNING,
        READY_LOG,
        HealthResult(OK.url, None, "no answer within 3 s"),
        evidence=UNRESPONSIVE,
        status=ServerStatus.FAILED,
        reason=SILENT,
    ),
    Case(
        "answers again: 200 wins",
        RUNNING,
        READY_LOG,
        OK,
        evidence=UNRESPONSIVE,
        status=ServerStatus.READY,
    ),
    Case(
        "not answering, then time limit",
        record(JobPhase.FAILED, "TIMEOUT"),
        TIME_LIMIT_LOG,
        evidence=UNRESPONSIVE,
        status=ServerStatus.FAILED,
        reason=SILENT,
    ),
    # A FAILED server stays FAILED after a shutdown.
    Case(
        "failed, then shut down, still running",
        RUNNING,
        FATAL_LOG,
        REFUSED,
        shutdown=True,
        evidence=FAILED_THEN_SHUT,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "failed, then shut down, cancelled",
        record(JobPhase.CANCELLED, "CANCELLED by 0"),
        FATAL_LOG,
        shutdown=True,
        evidence=FAILED_THEN_SHUT,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "failed, then shut down, forgotten",
        None,
        STARTING,
        shutdown=True,
        evidence=FAILED_THEN_SHUT,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    # Ending / ended.
    Case(
        "ending with a fatal line",
        record(JobPhase.ENDING, "COMPLETING"),
        FATAL_LOG,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "cancelled",
        record(JobPhase.CANCELLED, "CANCELLED by 1000"),
        CANCEL_LOG,
        engine_exit=-15,
        status=ServerStatus.SHUTDOWN,
        reason="cancelled",
    ),
    Case(
        "cancelled after the server had died",
        record(JobPhase.CANCELLED, "CANCELLED"),
        DIED_AFTER_READY,
        status=ServerStatus.FAILED,
        reason="EngineDeadError: EngineCore died",
    ),
    Case(
        "requested shutdown beats teardown noise",
        record(JobPhase.CANCELLED),
        FATAL_LOG,
        shutdown=True,
        status=ServerStatus.SHUTDOWN,
        reason="shut down on request",
    ),
    Case(
        "time limit",
        record(JobPhase.FAILED, "TIMEOUT"),
        TIME_LIMIT_LOG,
        engine_exit=143,
        status=ServerStatus.SHUTDOWN,
        reason="time limit reached",
    ),
    Case(
        "deadline",
        record(JobPhase.FAILED, "DEADLINE"),
        READY_LOG,
        status=ServerStatus.SHUTDOWN,
        reason="deadline reached",
    ),
    Case(
        "preempted",
        record(JobPhase.FAILED, "PREEMPTED"),
        READY_LOG,
        status=ServerStatus.SHUTDOWN,
        reason="preempted by the scheduler",
    ),
    Case(
        "completed",
        record(JobPhase.COMPLETED),
        READY_LOG,
        engine_exit=0,
        status=ServerStatus.SHUTDOWN,
        reason="job completed",
    ),
    Case(
        "completed but the engine had failed",
        record(JobPhase.COMPLETED),
        STARTING,
        engine_exit=1,
        status=ServerStatus.FAILED,
        reason="engine exited with code 1",
    ),
    Case(
        "failed state with a fatal line",
        record(JobPhase.FAILED, "FAILED", exit_code="1:0"),
        FATAL_LOG,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "failed state without logs",
        record(JobPhase.FAILED, "FAILED", exit_code="2:0"),
        None,
        status=ServerStatus.FAILED,
        reason="job failed (exit code 2:0)",
    ),
    Case(
        "out of memory",
        record(JobPhase.FAILED, "OUT_OF_MEMORY"),
        READY_LOG,
        status=ServerStatus.FAILED,
        reason="job ran out of memory",
    ),
    Case(
        "node failure",
        record(JobPhase.FAILED, "NODE_FAIL"),
        READY_LOG,
        status=ServerStatus.FAILED,
        reason="node failure",
    ),
    Case(
        "boot failure",
        record(JobPhase.FAILED, "BOOT_FAIL"),
        None,
        status=ServerStatus.FAILED,
        reason="node failed to boot",
    ),
    # Gone from the scheduler: decided from the job dir's evidence.
    Case(
        "forgotten by Slurm",
        None,
        READY_LOG,
        status=ServerStatus.SHUTDOWN,
        reason="job no longer known to Slurm",
    ),
    Case(
        "forgotten, no evidence at all",
        None,
        None,
        address=None,
        status=ServerStatus.SHUTDOWN,
        reason="job no longer known to Slurm",
    ),
    Case(
        "forgotten after a requested shutdown",
        None,
        READY_LOG,
        shutdown=True,
        engine_exit=-15,
        status=ServerStatus.SHUTDOWN,
        reason="shut down on request",
    ),
    Case(
        "forgotten after a time limit",
        None,
        TIME_LIMIT_LOG,
        status=ServerStatus.SHUTDOWN,
        reason="time limit reached",
    ),
    Case(
        "forgotten after a cancel",
        None,
        CANCEL_LOG,
        engine_exit=143,
        status=ServerStatus.SHUTDOWN,
        reason="cancelled",
    ),
    Case(
        "forgotten with a fatal line",
        None,
        FATAL_LOG,
        engine_exit=1,
        status=ServerStatus.FAILED,
        reason=KV_ERROR,
    ),
    Case(
        "forgotten, engine exit code only",
        None,
        STARTING,
        engine_exit=2,
        status=ServerStatus.FAILED,
        reason="engine exited with code 2",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decide(case: Case) -> None:
    response = decide(
        "42",
        "SmolLM2-135M-Instruct",
        case.record,
        case.verdict,
        case.health,
        case.address,
        case.shutdown,
        case.engine_exit,
        job_dir="/logs/SmolLM2/SmolLM2-135M-Instruct.42",
        evidence=case.evidence,
    )
    assert response.server_status is case.status
    assert response.job_id == "42" and response.model_name == "SmolLM2-135M-Instruct"
    assert response.job_dir == "/logs/SmolLM2/SmolLM2-135M-Instruct.42"
    if case.status is ServerStatus.READY:
        assert response.base_url == ADDRESS
    else:
        assert response.base_url is None
    if case.status is ServerStatus.FAILED:
        assert response.failed_reason == case.reason
    elif case.status is ServerStatus.PENDING:
        assert response.pending_reason == case.reason
    else:
        assert response.failed_reason is None
        assert response.detail == case.reason
    assert response.slurm_state == (case.record.state if case.record else None)
    assert "UNAVAILABLE" not in response.model_dump_json()


def test_every_server_status_is_reached() -> None:
    """FOREIGN is the client's word for a job that is no server; ``decide`` never says it."""
    outcomes = {
        decide(
            "1",
            "m",
            c.record,
            c.verdict,
            c.health,
            c.address,
            c.shutdown,
            c.engine_exit,
            evidence=c.evidence,
        ).server_status
        for c in CASES
    }
    assert outcomes == set(ServerStatus) - {ServerStatus.FOREIGN}


def test_decide_with_a_real_health_probe_of_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    health = check_health(address, timeout=1)
    response = decide("7", "m", RUNNING, READY_LOG, health, address, False, None)
    assert response.server_status is ServerStatus.LAUNCHING
    assert response.detail == "started, but /health: connection refused"
