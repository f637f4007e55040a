"""The reaper's decision as a table: cancel only what is provably abandoned."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vec_inf_flows.lifecycle import (
    JobOrigin,
    LeaseState,
    OwnerRecord,
    OwnerRun,
    ReapAction,
    RunLookup,
    decide_reap,
    shutdown_refusal,
)

SERVER = "http://prefect.internal:4200/api"
TEMPORARY = "http://127.0.0.1:8431/api"  # a CLI run's temporary server


def owner(url: str | None = SERVER, run: str | None = "run-1", host: str = "login1") -> OwnerRecord:
    return OwnerRecord(
        user="ada", host=host, pid=42, started_at=0.0, prefect_api_url=url, flow_run_id=run
    )


@dataclass(frozen=True)
class Row:
    name: str
    owner: OwnerRecord | None
    lease: LeaseState
    caller_url: str | None
    run: OwnerRun
    action: ReapAction
    words: str
    caller_host: str | None = "reaper-host"


FINAL = OwnerRun(RunLookup.FINAL, "Crashed")
ACTIVE = OwnerRun(RunLookup.ACTIVE, "Running")
NOT_FOUND = OwnerRun(RunLookup.NOT_FOUND)
NOT_ASKED = OwnerRun(RunLookup.NOT_ASKED)
ROWS = [
    Row("lapsed lease", owner(), LeaseState.LAPSED, SERVER, ACTIVE, ReapAction.CANCEL, "lease"),
    Row(
        "lapsed lease, owner unknown",
        None,
        LeaseState.LAPSED,
        None,
        NOT_ASKED,
        ReapAction.CANCEL,
        "stopped renewing",
    ),
    Row(
        "final on the same server",
        owner(),
        LeaseState.NONE,
        SERVER,
        FINAL,
        ReapAction.CANCEL,
        "has ended (Crashed)",
    ),
    Row(
        "same server, trailing slash",
        owner(),
        LeaseState.HELD,
        SERVER + "/",
        FINAL,
        ReapAction.CANCEL,
        "has ended",
    ),
    Row("still running", owner(), LeaseState.HELD, SERVER, ACTIVE, ReapAction.KEEP, "active"),
    Row(
        "final, but the owner handed it over",
        owner(),
        LeaseState.RELEASED,
        SERVER,
        FINAL,
        ReapAction.KEEP,
        "lease released",
    ),
    Row(
        "another Prefect server",
        owner(),
        LeaseState.HELD,
        "http://other:4200/api",
        FINAL,
        ReapAction.REPORT,
        "another Prefect server",
    ),
    Row(
        "a temporary server elsewhere",
        owner(TEMPORARY),
        LeaseState.HELD,
        SERVER,
        NOT_ASKED,
        ReapAction.REPORT,
        "another Prefect server",
    ),
    Row(
        "the same loopback URL on another machine",
        owner(TEMPORARY),
        LeaseState.HELD,
        TEMPORARY,
        FINAL,
        ReapAction.REPORT,
        "another Prefect server",
    ),
    Row(
        "the same loopback URL on the same machine",
        owner(TEMPORARY),
        LeaseState.HELD,
        TEMPORARY,
        FINAL,
        ReapAction.CANCEL,
        "has ended",
        caller_host="login1",
    ),
    Row(
        "not found on our server",
        owner(),
        LeaseState.NONE,
        SERVER,
        NOT_FOUND,
        ReapAction.REPORT,
        "not known",
    ),
    Row(
        "look-up failed",
        owner(),
        LeaseState.NONE,
        SERVER,
        OwnerRun(RunLookup.ERROR),
        ReapAction.REPORT,
        "could not be looked up",
    ),
    Row(
        "no owner URL recorded",
        owner(None),
        LeaseState.NONE,
        SERVER,
        FINAL,
        ReapAction.REPORT,
        "unknown Prefect server",
    ),
    Row(
        "launched by hand",
        owner(run=None),
        LeaseState.NONE,
        SERVER,
        NOT_ASKED,
        ReapAction.KEEP,
        "not launched by a flow run",
    ),
    Row(
        "launched before owners were recorded",
        None,
        LeaseState.NONE,
        SERVER,
        NOT_ASKED,
        ReapAction.KEEP,
        "not launched by a flow run",
    ),
    Row(
        "launched by hand with a lease",
        owner(run=None),
        LeaseState.HELD,
        SERVER,
        NOT_ASKED,
        ReapAction.KEEP,
        "enforces its lease",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_decide_reap(row: Row) -> None:
    decision = decide_reap(
        row.owner, row.lease, row.caller_url, row.run, caller_host=row.caller_host
    )
    assert decision.action is row.action
    assert row.words in decision.reason


def test_only_provable_abandonment_is_cancelled() -> None:
    cancelled = {row.name for row in ROWS if row.action is ReapAction.CANCEL}
    assert all(
        row.lease is LeaseState.LAPSED or row.run.lookup is RunLookup.FINAL
        for row in ROWS
        if row.name in cancelled
    )


@pytest.mark.parametrize(
    ("origin", "force", "refused"),
    [
        (JobOrigin.OURS, False, False),
        (JobOrigin.VEC_INF, False, False),
        (JobOrigin.FOREIGN, False, True),
        (JobOrigin.FOREIGN, True, False),
    ],
)
def test_shutdown_refuses_only_foreign_jobs_without_force(
    origin: JobOrigin, force: bool, refused: bool
) -> None:
    refusal = shutdown_refusal("77", origin, force=force)
    assert (refusal is not None) is refused
    if refusal:
        assert "--force" in refusal and "77" in refusal


def test_owner_record_round_trips_through_the_job_json() -> None:
    record = OwnerRecord.current(prefect_api_url=SERVER, flow_run_id="abc")
    assert record.pid > 0 and record.user and record.host
    config = {"owner": record.model_dump(mode="json")}
    assert OwnerRecord.from_job_json(config) == record
    assert OwnerRecord.from_job_json({}) is None
    assert OwnerRecord.from_job_json({"owner": {"user": 3}}) is None
