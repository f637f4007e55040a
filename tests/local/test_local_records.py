"""The local backend's one state table: stored facts + liveness -> JobRecord."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vec_inf_flows.backends.local.records import to_record
from vec_inf_flows.backends.local.store import Ended, Started, StoredJob
from vec_inf_flows.jobs import JobPhase

HELD = StoredJob("7", "m-vec-inf-1", 100.0, "/", started=None, ended=None, cancel_time=None)
STARTED = Started(pgid=4321, start_time=110.0, node="host", boot_id="b", leader_start_ticks=9)
RUNNING = replace(HELD, started=STARTED)


def _ended(code: int, at: float = 200.0) -> StoredJob:
    return replace(RUNNING, ended=Ended(exit_code=code, end_time=at))


@pytest.mark.parametrize(
    ("job", "alive", "expected"),
    [
        (HELD, False, (JobPhase.PENDING, "PENDING", "JobHeldUser", None)),
        (replace(HELD, cancel_time=105.0), False, (JobPhase.CANCELLED, "CANCELLED", None, None)),
        (RUNNING, True, (JobPhase.RUNNING, "RUNNING", None, None)),
        (replace(RUNNING, cancel_time=150.0), True, (JobPhase.ENDING, "COMPLETING", None, None)),
        (_ended(0), False, (JobPhase.COMPLETED, "COMPLETED", None, "0:0")),
        (_ended(2), False, (JobPhase.FAILED, "FAILED", "NonZeroExitCode", "2:0")),
        (_ended(-9), False, (JobPhase.FAILED, "FAILED", "NonZeroExitCode", "0:9")),
        (
            replace(_ended(-15), cancel_time=150.0),
            False,
            (JobPhase.CANCELLED, "CANCELLED", None, "0:15"),
        ),
        (
            replace(_ended(143), cancel_time=150.0),
            False,
            (JobPhase.CANCELLED, "CANCELLED", None, "143:0"),
        ),
        # A cancel that came after the job had already ended changes nothing.
        (
            replace(_ended(3, at=140.0), cancel_time=150.0),
            False,
            (JobPhase.FAILED, "FAILED", "NonZeroExitCode", "3:0"),
        ),
        (RUNNING, False, (JobPhase.FAILED, "FAILED", "lost", None)),
        (replace(RUNNING, cancel_time=150.0), False, (JobPhase.CANCELLED, "CANCELLED", None, None)),
    ],
)
def test_state_table(
    job: StoredJob, alive: bool, expected: tuple[JobPhase, str, str | None, str | None]
) -> None:
    record = to_record(job, alive)

    assert (record.phase, record.state, record.reason, record.exit_code) == expected
    assert (record.job_id, record.name, record.source) == ("7", "m-vec-inf-1", "local")
    assert record.node == (None if job.started is None else "host")
