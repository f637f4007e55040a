"""SlurmBackend's policies (retry, accounting detection, no blind resubmission), with one
command replaced by a deliberately failing stand-in and the rest real."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from slurm_helpers import calls_of, failing_command, sleeper_script, unique_name

from vec_inf_flows.backends.slurm.backend import RetryPolicy, SlurmBackend
from vec_inf_flows.backends.slurm.commands import SlurmCommands
from vec_inf_flows.errors import SlurmNotInstalledError, SlurmTransientError

UNKNOWN_ID = "999999991"
RETRY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=8.0)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    for retry, ceiling in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        delays = {policy.delay(retry, rng) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_missing_command_says_slurm_is_not_installed(tmp_path: Path) -> None:
    backend = SlurmBackend(commands=SlurmCommands(squeue=str(tmp_path / "squeue")))
    with pytest.raises(SlurmNotInstalledError, match="Slurm is not installed"):
        backend.query(["12"])


@pytest.mark.slurm
def test_accounting_off_is_detected_once(tmp_path: Path) -> None:
    sacct = failing_command(tmp_path, "sacct", "sacct: error: Slurm accounting storage is disabled")
    backend = SlurmBackend(commands=SlurmCommands(sacct=str(sacct)), retry=RETRY)

    assert backend.query([UNKNOWN_ID]) == {}
    assert backend.accounting is False
    assert backend.query([UNKNOWN_ID, "999999992"]) == {}
    assert backend.find_by_name(unique_name()) == []

    assert calls_of(sacct) == 1
    assert backend.command_counts["sacct"] == 1


@pytest.mark.slurm
def test_database_outage_is_retried_then_reported(tmp_path: Path) -> None:
    """squeue answered, so the ids it lacks do not run: they are left to their job dirs
    (absent from the answer) and the outage is kept for the "unknown job" message."""
    sacct = failing_command(
        tmp_path, "sacct", "sacct: error: Problem talking to the database: Connection refused"
    )
    pauses: list[float] = []
    backend = SlurmBackend(
        commands=SlurmCommands(sacct=str(sacct)), retry=RETRY, sleep=pauses.append
    )

    assert backend.query([UNKNOWN_ID]) == {}
    assert backend.accounting_error is not None
    assert "Problem talking to the database" in backend.accounting_error

    assert calls_of(sacct) == RETRY.attempts
    assert len(pauses) == RETRY.attempts - 1
    assert 0.5 <= pauses[0] <= 1.0 and 1.0 <= pauses[1] <= 2.0
    assert backend.accounting is None  # an outage says nothing about whether accounting exists


@pytest.mark.slurm
def test_unreachable_controller_at_submit_never_makes_a_job(tmp_path: Path) -> None:
    sbatch = failing_command(
        tmp_path,
        "sbatch",
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
        "(connect failure)",
    )
    pauses: list[float] = []
    backend = SlurmBackend(
        commands=SlurmCommands(sbatch=str(sbatch)),
        retry=RETRY,
        preflight=False,
        sleep=pauses.append,
    )
    name = unique_name()

    with pytest.raises(SlurmTransientError, match="Unable to contact slurm controller"):
        backend.submit(sleeper_script(), name)

    assert calls_of(sbatch) == RETRY.attempts
    # Before every new attempt the name was looked up (squeue; sacct as nothing was there).
    assert backend.command_counts["squeue"] == RETRY.attempts
    assert backend.find_by_name(name) == []


def _flaky_once(
    directory: Path, name: str, real: str, first_stdout: str, first_stderr: str
) -> Path:
    """A wrapper that answers like a just-restarted controller once, then runs the real command."""
    command, flag = directory / name, directory / f"{name}.first-done"
    command.write_text(
        "#!/bin/sh\n"
        f"if [ ! -e '{flag}' ]; then touch '{flag}'; printf '%s\\n' '{first_stdout}';"
        f" [ -n '{first_stderr}' ] && echo '{first_stderr}' >&2 && exit 1; exit 0; fi\n"
        f'exec {real} "$@"\n'
    )
    command.chmod(0o755)
    return command


@pytest.mark.slurm
def test_preflight_waits_out_nodes_that_are_still_registering(tmp_path: Path) -> None:
    """After a controller restart --test-only refuses everything while nodes are 'unk*'."""
    sbatch = _flaky_once(
        tmp_path,
        "sbatch",
        "sbatch",
        "",
        "sbatch: error: Batch job submission failed: Requested node configuration is not available",
    )
    sinfo = _flaky_once(tmp_path, "sinfo", "sinfo", "unk*", "")
    pauses: list[float] = []
    backend = SlurmBackend(
        commands=SlurmCommands(sbatch=str(sbatch), sinfo=str(sinfo)),
        retry=RETRY,
        sleep=pauses.append,
    )
    job_id = backend.submit(sleeper_script(30), unique_name(), hold=True)
    try:
        assert job_id.isdigit() and len(pauses) == 1
    finally:
        backend.cancel([job_id])


@pytest.mark.slurm
def test_preflight_refusal_with_healthy_nodes_is_final(tmp_path: Path) -> None:
    from vec_inf_flows.errors import SlurmPermanentError

    backend = SlurmBackend(retry=RETRY, sleep=lambda _: None)
    with pytest.raises(SlurmPermanentError, match="node configuration is not available"):
        backend.submit(
            sleeper_script(30, extra="#SBATCH --gres=gpu:64\n"), unique_name(), hold=True
        )
    assert backend.command_counts["sinfo"] == 1 and backend.command_counts["sbatch"] == 1
