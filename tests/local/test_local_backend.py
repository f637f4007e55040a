"""LocalBackend with real bash scripts, real supervisors and real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from local_helpers import (
    pgid_of,
    script,
    session_processes,
    wait_for,
    wait_session_gone,
    wait_terminal,
)

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.backends.local.processes import node_name
from vec_inf_flows.errors import ConfigError, JobNotFoundError, VecInfError
from vec_inf_flows.jobs import JobPhase


def test_held_job_waits_for_release_then_completes(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("echo hello from $SLURM_JOB_ID", out_dir=logs), "held-job")

    held = backend.query([job_id])[job_id]
    assert (held.phase, held.state, held.reason) == (JobPhase.PENDING, "PENDING", "JobHeldUser")
    assert held.source == "local" and held.node is None
    assert not (logs / f"job.{job_id}.out").exists()

    backend.release(job_id)
    done = wait_terminal(backend, job_id)

    assert (done.phase, done.state, done.exit_code) == (JobPhase.COMPLETED, "COMPLETED", "0:0")
    assert done.node == node_name()
    assert (logs / f"job.{job_id}.out").read_text() == f"hello from {job_id}\n"


def test_running_job_is_running_until_cancelled(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("echo started; exec sleep 300", out_dir=logs), "sleeper")
    backend.release(job_id)
    out = logs / f"job.{job_id}.out"
    record = wait_for(backend, job_id, lambda _: out.exists() and out.read_text() == "started\n")

    assert (record.phase, record.state) == (JobPhase.RUNNING, "RUNNING")
    session = pgid_of(backend, job_id)
    assert session_processes(session, zombies=False)

    backend.cancel([job_id])

    record = backend.query([job_id])[job_id]
    assert (record.phase, record.state) == (JobPhase.CANCELLED, "CANCELLED")
    assert session_processes(session) == []


def test_submit_without_hold_starts_at_once(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("exit 0", out_dir=logs), "now", hold=False)

    assert wait_terminal(backend, job_id).phase is JobPhase.COMPLETED


@pytest.mark.parametrize(
    ("body", "phase", "exit_code"),
    [
        ("exit 0", JobPhase.COMPLETED, "0:0"),
        ("exit 3", JobPhase.FAILED, "3:0"),
        ("kill -TERM $$", JobPhase.FAILED, "0:15"),
    ],
)
def test_exit_codes_in_slurm_words(
    backend: LocalBackend, logs: Path, body: str, phase: JobPhase, exit_code: str
) -> None:
    job_id = backend.submit(script(body, out_dir=logs), "exits", hold=False)

    record = wait_terminal(backend, job_id)

    assert (record.phase, record.exit_code) == (phase, exit_code)
    if phase is JobPhase.FAILED:
        assert (record.state, record.reason) == ("FAILED", "NonZeroExitCode")


def test_script_sees_a_slurm_like_environment(
    backend: LocalBackend, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "999999")  # as if the CLI ran inside another job
    monkeypatch.setenv("LOCAL_TEST_MARK", "kept")
    names = ["SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURMD_NODENAME", "SLURM_CPUS_PER_TASK"]
    body = "python3 -c 'import json, os, sys; json.dump(dict(os.environ), sys.stdout)'"
    job_id = backend.submit(script(body, "--cpus-per-task=3", out_dir=logs), "env-job")
    backend.release(job_id)
    wait_terminal(backend, job_id)

    env = json.loads((logs / f"job.{job_id}.out").read_text())

    assert [env[name] for name in names] == [job_id, "env-job", node_name(), "3"]
    assert env["LOCAL_TEST_MARK"] == "kept"


def test_output_patterns_and_chdir_are_honoured(backend: LocalBackend, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    (workdir / "out").mkdir(parents=True)
    text = script(
        "pwd; echo oops >&2",
        f"--chdir={workdir}",
        "-o out/%x.%j.100%%.log",
        '--error="out/err file.%j"',
    )
    job_id = backend.submit(text, "patterns")
    backend.release(job_id)
    wait_terminal(backend, job_id)

    assert (workdir / "out" / f"patterns.{job_id}.100%.log").read_text() == f"{workdir}\n"
    assert (workdir / "out" / f"err file.{job_id}").read_text() == "oops\n"


def test_without_output_lines_logs_go_to_slurm_default(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job_id = backend.submit(script("echo out; echo err >&2"), "defaults", hold=False)
    wait_terminal(backend, job_id)

    assert (tmp_path / f"slurm-{job_id}.out").read_text() == "out\nerr\n"


def test_release_fails_clearly_when_log_dir_is_missing(
    backend: LocalBackend, tmp_path: Path
) -> None:
    job_id = backend.submit(script("exit 0", out_dir=tmp_path / "absent"), "no-dir")

    with pytest.raises(ConfigError, match=r"directory of its log file .*absent.* does not exist"):
        backend.release(job_id)

    assert backend.query([job_id])[job_id].phase is JobPhase.PENDING  # fix it, then release


def test_release_of_unknown_or_started_job_is_refused(backend: LocalBackend, logs: Path) -> None:
    with pytest.raises(JobNotFoundError, match="no local job has this id"):
        backend.release("4242")
    job_id = backend.submit(script("exit 0", out_dir=logs), "once", hold=False)

    with pytest.raises(VecInfError, match="not held"):
        backend.release(job_id)


def test_cancelled_held_job_never_starts(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("echo ran", out_dir=logs), "held")

    backend.cancel([job_id])

    assert backend.query([job_id])[job_id].phase is JobPhase.CANCELLED
    with pytest.raises(VecInfError, match="not held \\(cancelled\\)"):
        backend.release(job_id)
    assert not (logs / f"job.{job_id}.out").exists()


def test_cancel_kills_a_job_that_ignores_sigterm(tmp_path: Path, logs: Path) -> None:
    backend = LocalBackend(tmp_path / "state", kill_wait=0.3)
    body = "trap '' TERM\nsleep 300 &\nsleep 300 &\necho ready\nwait"  # children ignore it too
    job_id = backend.submit(script(body, out_dir=logs), "stubborn", hold=False)
    out = logs / f"job.{job_id}.out"
    wait_for(backend, job_id, lambda _: out.exists() and "ready" in out.read_text())
    session = pgid_of(backend, job_id)

    backend.cancel([job_id])

    assert session_processes(session) == []
    record = backend.query([job_id])[job_id]
    # The supervisor outlived the SIGKILL of its job and recorded it.
    assert (record.phase, record.state, record.exit_code) == (
        JobPhase.CANCELLED,
        "CANCELLED",
        "0:9",
    )


def test_cancel_of_unknown_or_ended_ids_is_not_an_error(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("exit 0", out_dir=logs), "quick", hold=False)
    wait_terminal(backend, job_id)

    backend.cancel(["987654", job_id, "12+1"])

    assert backend.query([job_id])[job_id].phase is JobPhase.COMPLETED
    assert backend.query(["987654"]) == {}


def test_processes_left_behind_by_the_script_are_killed(backend: LocalBackend, logs: Path) -> None:
    job_id = backend.submit(script("sleep 300 &\necho $!", out_dir=logs), "leaky", hold=False)
    record = wait_terminal(backend, job_id)

    assert record.phase is JobPhase.COMPLETED
    assert wait_session_gone(pgid_of(backend, job_id)) == []


def test_job_whose_processes_vanish_without_exit_record_is_lost(
    backend: LocalBackend, logs: Path
) -> None:
    job_id = backend.submit(script("echo up; exec sleep 300", out_dir=logs), "doomed")
    backend.release(job_id)
    out = logs / f"job.{job_id}.out"
    wait_for(backend, job_id, lambda _: out.exists() and out.read_text() == "up\n")

    os.killpg(pgid_of(backend, job_id), signal.SIGKILL)  # a reboot, or kill -9 of everything
    record = wait_terminal(backend, job_id)

    assert (record.phase, record.state, record.reason) == (JobPhase.FAILED, "FAILED", "lost")


def test_concurrent_submits_get_distinct_increasing_ids(tmp_path: Path) -> None:
    state = tmp_path / "state"

    def submit_five(worker: int) -> list[int]:
        backend = LocalBackend(state)  # separate instances: only the file lock protects them
        return [int(backend.submit(script("exit 0"), f"w{worker}-{n}")) for n in range(5)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        per_worker = list(pool.map(submit_five, range(6)))

    ids = [job_id for ids in per_worker for job_id in ids]
    assert sorted(ids) == list(range(1, 31))
    assert all(ids == sorted(ids) for ids in per_worker)
    assert int(LocalBackend(state).submit(script("exit 0"), "after")) == 31


@pytest.mark.parametrize(
    ("directives", "message"),
    [
        (["--nodes=2"], "single-node jobs only; this job asks for 2 nodes"),
        (["-N 2-4"], "asks for 2 nodes"),
        (["--nodes=1", "hetjob", "--nodes=1"], "cannot run a heterogeneous \\(batch\\) job"),
    ],
)
def test_multi_node_and_batch_scripts_are_rejected(
    backend: LocalBackend, directives: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        backend.submit(script("exit 0", *directives), "too-big")

    assert backend.store.all_ids() == []


def test_list_and_find_by_name(tmp_path: Path, logs: Path) -> None:
    backend = LocalBackend(tmp_path / "state", keep_ended=0.0)
    ended = backend.submit(script("exit 0", out_dir=logs), "a-vec-inf-1", hold=False)
    held = backend.submit(script("exit 0", out_dir=logs), "b-vec-inf-2")
    backend.submit(script("exit 0", out_dir=logs), "other")
    wait_terminal(backend, ended)

    assert [r.job_id for r in backend.list_jobs("-vec-inf-")] == [held]  # ended ones drop out
    assert backend.find_by_name("a-vec-inf-1") == [ended]
    assert backend.find_by_name("missing") == []
    kept = LocalBackend(tmp_path / "state")  # the default keeps ended jobs listed a while
    assert [r.job_id for r in kept.list_jobs("-vec-inf-")] == [ended, held]
    backend.cancel([held])


def test_rendered_multi_node_and_batch_scripts_are_rejected(
    backend: LocalBackend, tmp_path: Path
) -> None:
    from vec_inf_flows.catalog.options import LaunchOptions
    from vec_inf_flows.catalog.resolve import resolve
    from vec_inf_flows.scripts.render import render_batch_script, render_job_script

    options = LaunchOptions(engine="sim", log_dir=str(tmp_path / "logs"))
    single = resolve("SmolLM2-135M-Instruct", options)
    multi = resolve(
        "SmolLM2-135M-Instruct", options.model_copy(update={"engine": "vllm", "num_nodes": 2})
    )

    with pytest.raises(ConfigError, match="asks for 2 nodes"):
        backend.submit(render_job_script(multi, "multi-vec-inf-1"), "multi-vec-inf-1")
    with pytest.raises(ConfigError, match="heterogeneous"):
        batch = render_batch_script([single, single], "b-vec-inf-1", "BATCH-a-b")
        backend.submit(batch, "b-vec-inf-1")
    assert backend.store.all_ids() == []


def test_job_outlives_the_process_that_started_it(tmp_path: Path, logs: Path) -> None:
    """As with the CLI: one process launches and exits; later ones query and cancel."""
    text = script("echo up; exec sleep 300", out_dir=logs)
    launcher = (
        "import sys; from pathlib import Path; "
        "from vec_inf_flows.backends.local import LocalBackend; "
        "print(LocalBackend(Path(sys.argv[1])).submit(sys.stdin.read(), 'detached', hold=False))"
    )
    started = subprocess.run(
        [sys.executable, "-c", launcher, str(tmp_path / "state")],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    job_id = started.stdout.strip()
    backend = LocalBackend(tmp_path / "state", kill_wait=2.0)
    out = logs / f"job.{job_id}.out"

    record = wait_for(backend, job_id, lambda _: out.exists() and out.read_text() == "up\n")

    assert record.phase is JobPhase.RUNNING
    backend.cancel([job_id])
    assert backend.query([job_id])[job_id].phase is JobPhase.CANCELLED
    # The supervisor's parent is gone, so an init that does not reap may keep its zombie.
    assert session_processes(pgid_of(backend, job_id), zombies=False) == []
