"""SlurmBackend against the real local cluster (scripts/slurm/up.sh): two nodes, 4 fake GPUs
each, accounting on, MinJobAge=10."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from slurm_helpers import (
    CTLD_SCRIPT,
    FAST_RETRY,
    sleeper_script,
    unique_name,
    wait_until,
)

from vec_inf_flows.backends.slurm.backend import SlurmBackend
from vec_inf_flows.backends.slurm.commands import SlurmCommands
from vec_inf_flows.errors import JobNotFoundError, SlurmPermanentError
from vec_inf_flows.jobs import JobPhase, JobRecord

pytestmark = pytest.mark.slurm

HET_SCRIPT = """#!/bin/bash
#SBATCH --output=/dev/null
#SBATCH --cpus-per-task=1
#SBATCH hetjob
#SBATCH --cpus-per-task=1
sleep 60
"""
UNKNOWN_ID = "999999990"


def test_held_job_waits_for_release_then_runs(backend: SlurmBackend, cleanup: list[str]) -> None:
    name = unique_name()
    job_id = backend.submit(sleeper_script(), name)
    cleanup.append(job_id)

    held = backend.query([job_id])[job_id]
    assert (held.phase, held.reason, held.name) == (JobPhase.PENDING, "JobHeldUser", name)

    backend.release(job_id)

    def running() -> JobRecord | None:
        record = backend.query([job_id])[job_id]
        return record if record.phase is JobPhase.RUNNING else None

    record = wait_until(running, 30, f"job {job_id} to run")
    assert record.node in {"node1", "node2"}
    assert record.source == "squeue"
    assert backend.find_by_name(name) == [job_id]


def test_many_jobs_cost_one_squeue_call(backend: SlurmBackend, cleanup: list[str]) -> None:
    names = [unique_name() for _ in range(5)]
    ids = [backend.submit(sleeper_script(), name) for name in names]
    cleanup.extend(ids)
    backend.command_counts.clear()

    records = backend.query(ids)

    assert dict(backend.command_counts) == {"squeue": 1}
    assert [records[job_id].name for job_id in ids] == names
    assert {record.phase for record in records.values()} == {JobPhase.PENDING}

    listed = {record.job_id for record in backend.list_jobs("-vec-inf-")}
    assert set(ids) <= listed
    assert backend.command_counts["squeue"] == 2


def test_ids_unknown_to_squeue_cost_one_sacct_call(
    backend: SlurmBackend, cleanup: list[str]
) -> None:
    job_id = backend.submit(sleeper_script(), unique_name())
    cleanup.append(job_id)
    backend.command_counts.clear()

    records = backend.query([job_id, UNKNOWN_ID])

    assert set(records) == {job_id}
    assert dict(backend.command_counts) == {"squeue": 1, "sacct": 1}


def test_very_many_ids_are_chunked(backend: SlurmBackend, cleanup: list[str]) -> None:
    job_id = backend.submit(sleeper_script(), unique_name())
    cleanup.append(job_id)
    unknown = [str(900_000_000 + n) for n in range(1000)]
    backend.command_counts.clear()

    records = backend.query([job_id, *unknown])

    assert set(records) == {job_id}
    assert dict(backend.command_counts) == {"squeue": 3, "sacct": 2}


def test_a_single_unknown_id_is_absent_not_an_error(backend: SlurmBackend) -> None:
    # squeue with exactly one unknown id exits 1 ("Invalid job id specified").
    assert backend.query([UNKNOWN_ID]) == {}


def test_cancel(backend: SlurmBackend, cleanup: list[str]) -> None:
    job_id = backend.submit(sleeper_script(), unique_name())
    cleanup.append(job_id)

    backend.cancel([job_id])

    record = backend.query([job_id])[job_id]
    assert record.phase is JobPhase.CANCELLED
    assert record.state.startswith("CANCELLED")
    backend.cancel([job_id, UNKNOWN_ID])  # ended and unknown ids are not an error
    with pytest.raises(JobNotFoundError):
        backend.release(UNKNOWN_ID)


def test_het_job_components(backend: SlurmBackend, cleanup: list[str]) -> None:
    name = unique_name("het")
    leader = backend.submit(HET_SCRIPT, name)
    cleanup.append(leader)

    records = backend.query([leader])
    assert set(records) == {f"{leader}+0", f"{leader}+1"}
    assert {record.name for record in records.values()} == {name}
    assert set(backend.query([f"{leader}+1"])) == {f"{leader}+1"}

    backend.release(leader)

    def both_running() -> dict[str, JobRecord] | None:
        now = backend.query([leader])
        return now if all(r.phase is JobPhase.RUNNING for r in now.values()) else None

    running = wait_until(both_running, 30, f"both components of het job {leader} to run")
    assert {record.node for record in running.values()} == {"node1", "node2"}
    assert backend.find_by_name(name) == [leader]

    backend.cancel([leader])

    def both_cancelled() -> set[JobPhase] | None:
        phases = {r.phase for r in backend.query([leader]).values()}
        return phases if phases == {JobPhase.CANCELLED} else None

    # A running component passes through COMPLETING (ENDING) while its processes are killed.
    wait_until(both_cancelled, 30, f"het job {leader} to be cancelled")


def test_ended_jobs_are_found_in_accounting_after_leaving_squeue(
    backend: SlurmBackend, cleanup: list[str]
) -> None:
    done = backend.submit(
        "#!/bin/bash\n#SBATCH --output=/dev/null\ntrue\n", unique_name(), hold=False
    )
    failed = backend.submit(
        "#!/bin/bash\n#SBATCH --output=/dev/null\nexit 3\n", unique_name(), hold=False
    )
    cleanup.extend([done, failed])

    def both_in_accounting_only() -> dict[str, JobRecord] | None:
        records = backend.query([done, failed])
        sources = {record.source for record in records.values()}
        return records if len(records) == 2 and sources == {"sacct"} else None

    # MinJobAge=10: slurmctld forgets ended jobs within about 10-20 s.
    records = wait_until(both_in_accounting_only, 45, "the ended jobs to leave squeue")
    assert (records[done].phase, records[done].exit_code) == (JobPhase.COMPLETED, "0:0")
    assert records[failed].phase is JobPhase.FAILED
    assert records[failed].exit_code == "3:0"
    assert records[failed].reason == "NonZeroExitCode (exit code 3)"
    assert records[failed].node in {"node1", "node2"}
    assert backend.find_by_name(records[failed].name) == [failed]


@pytest.mark.parametrize(
    ("directive", "slurm_words"),
    [
        ("#SBATCH --partition=no-such-partition", "Invalid partition name specified"),
        ("#SBATCH --gres=gpu:5", "Requested node configuration is not available"),
        ("#SBATCH --gres=tpu:1", "Invalid generic resource (gres) specification"),
    ],
)
def test_a_refused_job_fails_at_once_with_slurms_words(
    backend: SlurmBackend, directive: str, slurm_words: str
) -> None:
    name = unique_name()
    with pytest.raises(SlurmPermanentError) as raised:
        backend.submit(sleeper_script(extra=directive + "\n"), name)

    message = str(raised.value)
    assert slurm_words in message
    assert "sbatch: error" not in message and "\n" not in message
    assert backend.command_counts["sbatch"] == 1  # no retry
    assert backend.find_by_name(name) == []  # and no job left behind


def test_a_query_survives_a_controller_outage(
    cleanup: list[str], controller_restarted: None
) -> None:
    probe = SlurmBackend(retry=FAST_RETRY)
    job_id = probe.submit(sleeper_script(), unique_name())
    cleanup.append(job_id)
    restarts: list[float] = []

    def restart_controller(delay: float) -> None:
        # The backoff pause is where the outage ends: slurmctld comes back as up.sh starts it.
        restarts.append(delay)
        subprocess.run([str(CTLD_SCRIPT), "start"], check=True, capture_output=True, timeout=60)

    backend = SlurmBackend(retry=FAST_RETRY, query_timeout=3.0, sleep=restart_controller)
    subprocess.run([str(CTLD_SCRIPT), "stop"], check=True, capture_output=True, timeout=60)

    records = backend.query([job_id])

    assert records[job_id].phase is JobPhase.PENDING
    assert len(restarts) == 1
    assert backend.command_counts["squeue"] == 2


def test_an_ambiguous_sbatch_leaves_exactly_one_job(tmp_path: Path, cleanup: list[str]) -> None:
    real_sbatch = shutil.which("sbatch")
    assert real_sbatch is not None
    calls = tmp_path / "submissions"
    wrapper = tmp_path / "sbatch"
    # Submits for real, then reports the timeout Slurm prints when the answer is lost.
    wrapper.write_text(
        f"""#!/bin/sh
case " $* " in *" --test-only "*) exec {real_sbatch} "$@" ;; esac
echo submit >> {calls}
{real_sbatch} "$@" > /dev/null
echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
exit 1
"""
    )
    wrapper.chmod(0o755)
    backend = SlurmBackend(commands=SlurmCommands(sbatch=str(wrapper)), retry=FAST_RETRY)
    name = unique_name()

    job_id = backend.submit(sleeper_script(), name)
    cleanup.append(job_id)

    assert calls.read_text().splitlines() == ["submit"]
    assert backend.find_by_name(name) == [job_id]
    assert backend.query([job_id])[job_id].name == name
