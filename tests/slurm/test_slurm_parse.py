"""Parsers against output recorded from the local cluster (tests/fixtures/slurm/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vec_inf_flows.backends.slurm.parse import (
    STATE_PHASES,
    SlurmParseError,
    exit_code_from_wait_status,
    first_node,
    parse_sacct,
    parse_squeue,
    parse_submitted_id,
    phase_of,
)
from vec_inf_flows.jobs import JobId, JobPhase, JobRecord

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def _by_id(records: list[JobRecord]) -> dict[str, JobRecord]:
    return {record.job_id: record for record in records}


def test_squeue_recorded_jobs_of_every_kind() -> None:
    parsed = parse_squeue(_fixture("squeue_various.txt"))
    records = _by_id([job.record for job in parsed])
    assert set(records) == {"36", "37", "38+0", "38+1", "40", "41", "42", "44", "45"}
    assert records["36"] == JobRecord("36", "held job", JobPhase.PENDING, "PENDING", "JobHeldUser")
    assert records["37"] == JobRecord(
        "37", "running", JobPhase.RUNNING, "RUNNING", None, None, "node1", "squeue"
    )
    assert records["38+1"].node == "node2"
    assert records["40"].phase is JobPhase.COMPLETED
    assert records["40"].exit_code == "0:0"
    assert records["40"].reason is None
    # The name is the last field and may contain the separator itself.
    assert records["41"].name == "exit|3"
    assert records["41"].exit_code == "3:0"
    assert records["41"].reason == "NonZeroExitCode (exit code 3)"
    assert records["42"].reason == "JobLaunchFailure (killed by signal 9)"
    assert records["44"].phase is JobPhase.CANCELLED
    assert records["44"].exit_code == "0:15"
    # Released but impossible: Slurm keeps it pending with this reason forever.
    assert records["45"].phase is JobPhase.PENDING
    assert records["45"].reason == "BadConstraints"


def test_squeue_keeps_the_unique_id_of_het_components() -> None:
    parsed = {job.record.job_id: job for job in parse_squeue(_fixture("squeue_various.txt"))}
    assert parsed["38+0"].unique_id == "38"
    assert parsed["38+1"].unique_id == "39"
    assert parsed["38+1"].job_id == JobId(38, 1)


def test_sacct_recorded_jobs_of_every_kind() -> None:
    records = _by_id([job.record for job in parse_sacct(_fixture("sacct_various.txt"))])
    assert all(record.source == "sacct" for record in records.values())
    assert records["36"].node is None  # "None assigned"
    assert records["36"].reason == "JobHeldUser"
    assert records["38+1"].phase is JobPhase.COMPLETED
    assert records["41"].exit_code == "3:0"
    assert records["41"].reason == "NonZeroExitCode (exit code 3)"
    assert records["42"].exit_code == "0:9"
    assert records["42"].reason == "killed by signal 9"
    assert records["44"].state == "CANCELLED by 0"
    assert records["44"].phase is JobPhase.CANCELLED
    assert records["44"].reason == "CANCELLED by 0"
    assert records["37"].exit_code is None  # running: no exit code yet


@pytest.mark.parametrize(
    ("state", "reason", "exit_code", "expected_reason"),
    [
        ("TIMEOUT", "None", "0:15", "TIMEOUT"),
        ("OUT_OF_MEMORY", "None", "0:125", "OUT_OF_MEMORY"),
        ("NODE_FAIL", "None", "0:0", "NODE_FAIL"),
        ("PREEMPTED", "None", "0:0", "PREEMPTED"),
        ("DEADLINE", "None", "0:0", "DEADLINE"),
        ("BOOT_FAIL", "None", "0:0", "BOOT_FAIL"),
        ("FAILED", "None", "2:0", "NonZeroExitCode (exit code 2)"),
        ("FAILED", "None", "0:0", None),
        ("COMPLETED", "None", "0:0", None),
        ("PENDING", "Resources", "0:0", "Resources"),
        ("RUNNING", "None", "0:0", None),
    ],
)
def test_sacct_reason_says_what_ended_the_job(
    state: str, reason: str, exit_code: str, expected_reason: str | None
) -> None:
    line = f"7|7|{state}|{exit_code}|{reason}|node[2-3]|2026-01-01T00:00:00|Unknown|job"
    (job,) = parse_sacct(line + "\n")
    assert job.record.reason == expected_reason
    assert job.record.node == "node2"


ALL_SLURM_STATES = {
    "PENDING": JobPhase.PENDING,
    "CONFIGURING": JobPhase.RUNNING,
    "RUNNING": JobPhase.RUNNING,
    "COMPLETING": JobPhase.ENDING,
    "COMPLETED": JobPhase.COMPLETED,
    "FAILED": JobPhase.FAILED,
    "CANCELLED": JobPhase.CANCELLED,
    "TIMEOUT": JobPhase.FAILED,
    "NODE_FAIL": JobPhase.FAILED,
    "PREEMPTED": JobPhase.FAILED,
    "OUT_OF_MEMORY": JobPhase.FAILED,
    "BOOT_FAIL": JobPhase.FAILED,
    "DEADLINE": JobPhase.FAILED,
    "REQUEUED": JobPhase.PENDING,
    "REQUEUE_FED": JobPhase.PENDING,
    "REQUEUE_HOLD": JobPhase.PENDING,
    "SUSPENDED": JobPhase.PENDING,
    "STOPPED": JobPhase.PENDING,
    "RESIZING": JobPhase.RUNNING,
    "SIGNALING": JobPhase.RUNNING,
    "STAGE_OUT": JobPhase.ENDING,
    "EXPEDITING": JobPhase.ENDING,
    "SPECIAL_EXIT": JobPhase.PENDING,
    "RESV_DEL_HOLD": JobPhase.PENDING,
    "REVOKED": JobPhase.CANCELLED,
    "POWER_UP_NODE": JobPhase.PENDING,
    "LAUNCH_FAILED": JobPhase.FAILED,
    "RECONFIG_FAIL": JobPhase.FAILED,
    "UPDATE_DB": JobPhase.RUNNING,
}


@pytest.mark.parametrize(("state", "phase"), sorted(ALL_SLURM_STATES.items()))
def test_every_slurm_state_has_a_phase(state: str, phase: JobPhase) -> None:
    assert phase_of(state) is phase
    line = f"9|9|{state}|None|node1|node1|0|job"
    (job,) = parse_squeue(line)
    assert job.record.phase is phase
    assert job.record.state == state


def test_the_table_has_no_state_the_tests_do_not_know() -> None:
    assert set(STATE_PHASES) == set(ALL_SLURM_STATES)


@pytest.mark.parametrize("word", ["FROBNICATED", "WAITING_FOR_GODOT", "", "running?"])
def test_unknown_state_words_are_unknown_not_a_crash(word: str) -> None:
    assert phase_of(word) is JobPhase.UNKNOWN
    (job,) = parse_squeue(f"9|9|{word}|None|node1|node1|0|job")
    assert job.record.phase is JobPhase.UNKNOWN
    assert job.record.state == word


@pytest.mark.parametrize(
    ("state", "phase"),
    [("CANCELLED by 0", JobPhase.CANCELLED), ("CANCELLED by 1234", JobPhase.CANCELLED)],
)
def test_cancelled_by_uid(state: str, phase: JobPhase) -> None:
    assert phase_of(state) is phase


def test_empty_output_and_noise_lines() -> None:
    assert parse_squeue("") == []
    assert parse_sacct("\n\n") == []
    noisy = "CLUSTER: vecinf\nsqueue: error: some warning text\n12|12|RUNNING|None|n1|n1|0|x\n"
    (job,) = parse_squeue(noisy)
    assert job.record.job_id == "12"


@pytest.mark.parametrize(
    "line",
    [
        "12|12|RUNNING",  # fields missing: the format changed under us
        "abc|12|RUNNING|None|n1|n1|0|x",  # no unique id
        "just some text",
    ],
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(SlurmParseError):
        parse_squeue(line)


def test_array_tasks_are_reported_by_their_unique_id() -> None:
    jobs = parse_squeue(
        "51|50_1|RUNNING|None|n1|n1|0|arr\n50|50_[2-4%2]|PENDING|JobArrayTaskLimit||n/a|0|arr"
    )
    assert [job.record.job_id for job in jobs] == ["51", "50"]


def test_sacct_skips_steps_and_keeps_the_last_row_of_a_job() -> None:
    text = (
        "7|7|REQUEUED|0:0|None|n1|2026-01-01T00:00:00|2026-01-01T00:01:00|j\n"
        "7.batch|7.batch|COMPLETED|0:0|None|n1|2026-01-01T00:00:00|2026-01-01T00:01:00|batch\n"
        "7|7|RUNNING|0:0|None|n2|2026-01-01T00:00:00|Unknown|j\n"
    )
    (job,) = parse_sacct(text)
    assert job.record.phase is JobPhase.RUNNING
    assert job.record.node == "n2"


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [("46\n", "46"), ("46;vecinf\n", "46"), ("note: something\n47\n", "47")],
)
def test_sbatch_parsable_output(stdout: str, job_id: str) -> None:
    assert parse_submitted_id(stdout) == job_id


def test_sbatch_recorded_output() -> None:
    assert parse_submitted_id(_fixture("sbatch_parsable.txt")) == "46"


@pytest.mark.parametrize("stdout", ["", "Submitted batch job 12\n", "12 13\n"])
def test_sbatch_output_without_an_id_is_an_error(stdout: str) -> None:
    with pytest.raises(SlurmParseError):
        parse_submitted_id(stdout)


@pytest.mark.parametrize(
    ("node_list", "first"),
    [
        ("node1", "node1"),
        ("node[3-5,9]", "node3"),
        ("node[07-09],gpu1", "node07"),
        ("a1,b2", "a1"),
        ("None assigned", None),
        ("n/a", None),
        ("", None),
    ],
)
def test_first_node_of_a_host_list(node_list: str, first: str | None) -> None:
    assert first_node(node_list) == first


@pytest.mark.parametrize(
    ("raw", "code"), [("0", "0:0"), ("768", "3:0"), ("9", "0:9"), ("3:0", "3:0"), ("?", None)]
)
def test_exit_codes(raw: str, code: str | None) -> None:
    assert exit_code_from_wait_status(raw) == code
