"""Classifying failed commands, on stderr recorded from the local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from vec_inf_flows.backends.slurm.errors import Outcome, classify, error_for, slurm_words
from vec_inf_flows.backends.slurm.runner import CommandResult
from vec_inf_flows.errors import SlurmPermanentError, SlurmTransientError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def _failed(stderr: str, returncode: int | None = 1) -> CommandResult:
    return CommandResult(("sbatch", "--parsable"), returncode, "", stderr, 0.01)


def _recorded(name: str) -> CommandResult:
    return _failed((FIXTURES / name).read_text())


@pytest.mark.parametrize(
    ("fixture", "outcome", "words"),
    [
        (
            "sbatch_invalid_partition.err",
            Outcome.PERMANENT,
            "Invalid partition name specified (invalid partition specified: nosuch)",
        ),
        (
            "sbatch_invalid_gres.err",
            Outcome.PERMANENT,
            "Invalid generic resource (gres) specification",
        ),
        (
            "sbatch_test_only_too_many_gpus.err",
            Outcome.PERMANENT,
            "Requested node configuration is not available",
        ),
        (
            "sbatch_controller_down.err",
            Outcome.TRANSIENT,
            "Unable to contact slurm controller (connect failure)",
        ),
        (
            "squeue_controller_down.err",
            Outcome.TRANSIENT,
            "Unable to contact slurm controller (connect failure)",
        ),
        (
            "scancel_controller_down.err",
            Outcome.TRANSIENT,
            "Kill job error on job id 46: Unable to contact slurm controller (connect failure)",
        ),
        ("squeue_single_unknown_id.err", Outcome.ABSENT, "Invalid job id specified"),
        ("scontrol_release_finished.err", Outcome.PERMANENT, "Job has already finished"),
    ],
)
def test_recorded_failures(fixture: str, outcome: Outcome, words: str) -> None:
    result = _recorded(fixture)
    assert classify(result) is outcome
    assert slurm_words(result) == words


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "squeue: error: slurm_receive_msg: Zero Bytes were transmitted or received",
        "sacct: error: Problem talking to the database: Connection refused",
        "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection",
        "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
        # What the commands print while slurmctld restarts or fails over.
        "squeue: error: slurm_load_jobs error: Unexpected message received",
        "sbatch: error: Batch job submission failed: Unexpected message received",
        "scancel: error: Kill job error on job id 12: Unexpected message received",
        "scontrol: error: Slurm backup controller in standby mode",
        "squeue: error: slurm_receive_msg: Message receive failure",
        "sbatch: error: slurm_send_node_msg: Message send failure",
        "sbatch: error: Batch job submission failed: Process is shutting down and closing all "
        "communications",
        "squeue: error: Rate limit exceeded, please retry momentarily",
        "scontrol: error: Job can not be altered now, try again later for job 12",
    ],
)
def test_transient_texts(stderr: str) -> None:
    assert classify(_failed(stderr)) is Outcome.TRANSIENT


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Invalid qos specification",
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified",
        "sbatch: error: Batch job submission failed: Requested time limit is invalid "
        "(missing or exceeds some limit)",
        "sbatch: error: Memory specification can not be satisfied",
        "sbatch: error: CPU count per node can not be satisfied",
        "sbatch: error: something nobody has seen before",
    ],
)
def test_permanent_texts(stderr: str) -> None:
    result = _failed(stderr)
    assert classify(result) is Outcome.PERMANENT
    assert not slurm_words(result).startswith("sbatch")


def test_accounting_disabled() -> None:
    result = _failed("sacct: error: Slurm accounting storage is disabled")
    assert classify(result) is Outcome.ACCOUNTING_OFF


def test_success_and_timeout() -> None:
    assert classify(_failed("sbatch: Job 48 to start at ...", returncode=0)) is Outcome.OK
    timed_out = _failed("", returncode=None)
    assert classify(timed_out) is Outcome.TRANSIENT
    assert slurm_words(timed_out) == "no answer within 0 s"


def test_messages_are_one_line_with_slurms_words() -> None:
    permanent = error_for(
        _recorded("sbatch_invalid_partition.err"), Outcome.PERMANENT, "the submission of job 'x'"
    )
    assert isinstance(permanent, SlurmPermanentError)
    assert str(permanent) == (
        "Slurm refused the submission of job 'x': Invalid partition name specified "
        "(invalid partition specified: nosuch)"
    )
    transient = error_for(
        _recorded("squeue_controller_down.err"), Outcome.TRANSIENT, "the job status query"
    )
    assert isinstance(transient, SlurmTransientError)
    assert "\n" not in str(transient)
