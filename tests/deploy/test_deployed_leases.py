"""Leases and the reaper with real Prefect servers, as users run them.

Two runs work at once, each with a short lease (renewed every 5 s, lapsing after 20 s) and one
long request in flight:

* A: the shipped ``serve-and-run/on-demand`` deployment, started as the UI starts it, executed
  by the session's real ``prefect worker start`` (the README's deploy commands);
* B: an in-process ``vec-inf-flows run serve-and-run`` with Prefect's temporary server (the
  CLI's child), sharing the worker's job index as one user's runs do.

The reaper runs twice while they work, and cancels neither: once as ``vec-inf-flows run
cleanup`` on a third (temporary) Prefect server, where A and B are both on another server and
reported; once as the shipped ``cleanup-orphaned-servers/reaper`` deployment on A's server, where
A is active (kept) and B is on another server (reported). Then the worker, A's flow-run process
and B are SIGKILLed, as when a machine is lost: with no reaper and no Prefect automation, both
jobs end within the lease + 60 s, and B's temporary Prefect server is gone too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import (
    BIN,
    Deployed,
    clean_environment,
    stop_process_group,
    temporary_servers,
    wait_until,
)
from testkit import processes_with_env

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import VecInfError
from vec_inf_flows.lifecycle.owner import OwnerRecord

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
RENEW, LAPSE = 5, 20
BAR = LAPSE + 60
SIM_ARGS = "--sim-startup-delay=0.5,--sim-tokens-per-second=2"  # one request takes minutes


def slow_request(path: Path) -> str:
    """One request generating 1500 tokens at 2 a second: in flight for the whole test."""
    request = {"id": "slow", "prompt": "Tell a long story.", "max_tokens": 1500, "ignore_eos": True}
    path.write_text(json.dumps(request) + "\n")
    return str(path)


def owner_run(client: VecInfClient, job_id: str) -> str | None:
    job_dir = client.attach(job_id).job_dir
    if job_dir is None:
        return None
    directory = Path(job_dir)
    config = json.loads((directory / f"{directory.name}.json").read_text())
    owner = OwnerRecord.from_job_json(config)
    return owner.flow_run_id if owner is not None else None


def busy_jobs(client: VecInfClient, ids: list[str]) -> dict[str, str]:
    """Owning flow run -> job id, for the jobs of ``ids`` with a request being generated."""
    busy: dict[str, str] = {}
    for job_id in ids:
        try:
            if not client.metrics(job_id).metrics.requests_running:
                continue
        except VecInfError:  # not READY (yet, or any more)
            continue
        run = owner_run(client, job_id)
        if run is not None:
            busy[run] = job_id
    return busy


def flow_run_processes(run_id: str) -> list[int]:
    """The processes a worker started for this flow run (they carry its id in the env), but
    not those of the Slurm jobs the run submitted: a job inherits its submitter's environment."""
    marked = processes_with_env("PREFECT__FLOW_RUN_ID", run_id)
    in_jobs = set()
    for pid in marked:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"\0SLURM_JOB_ID=" in b"\0" + environ:
            in_jobs.add(pid)
    return [pid for pid in marked if pid not in in_jobs]


def in_squeue(job_ids: set[str]) -> set[str]:
    listed = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i"], capture_output=True, text=True, timeout=30
    ).stdout.split()
    return job_ids & {job_id.split("+")[0] for job_id in listed}


def rows_by_job(rows: list[dict[str, Any]], job_key: str) -> dict[str, dict[str, Any]]:
    return {str(row[job_key]): row for row in rows}


def test_the_reaper_cancels_no_live_run_and_a_lost_machine_costs_only_the_lease(
    deployed: Deployed, tmp_path: Path
) -> None:
    worker = deployed.worker
    client = VecInfClient(state_dir=worker.home)
    lease = {"renew_every": RENEW, "lapse_after": LAPSE}
    run_a = deployed.api.run_deployment(
        deployed.deployment_id("serve-and-run/on-demand"),
        {
            "dataset": slow_request(tmp_path / "a.jsonl"),
            "output": str(tmp_path / "a.out.jsonl"),
            "launch_options": {"engine": "sim", "time": "00:10:00", "vllm_args": SIM_ARGS},
            "lease": lease,
            "ready_timeout": 180,
            "poll_interval": 0.5,
        },
    )
    home_b = tmp_path / "prefect-home-b"
    shared = {
        "VEC_INF_FLOWS_HOME": str(worker.home),
        "VEC_INF_LOG_DIR": str(worker.directory / "logs"),
    }
    log_b = tmp_path / "run-b.log"
    command_b = [
        str(BIN / "vec-inf-flows"), "run", "serve-and-run", "--model", MODEL, "--engine", "sim",
        "--time", "00:10:00", f"--vllm-args={SIM_ARGS}", "--input",
        slow_request(tmp_path / "b.jsonl"), "--output", str(tmp_path / "b.out.jsonl"),
        "--ready-timeout", "180", "--lease-renew", str(RENEW), "--lease-lapse", str(LAPSE),
    ]  # fmt: skip
    with log_b.open("wb") as output:
        run_b = subprocess.Popen(
            command_b,
            env=clean_environment(PREFECT_HOME=str(home_b), **shared),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def both_busy() -> dict[str, str] | None:
            if run_b.poll() is not None:
                raise AssertionError(f"run B ended early:\n{log_b.read_text()[-3000:]}")
            busy = busy_jobs(client, sorted(worker.job_ids()))
            return busy if run_a in busy and len(busy) == 2 else None

        busy = wait_until(both_busy, 240, "both runs to have a request in flight", interval=1)
        job_a = busy.pop(run_a)
        ((run_b_id, job_b),) = busy.items()

        # The reaper on a third Prefect server (a CLI run's temporary one): both owners are on
        # other servers, so both are reported.
        reaped = subprocess.run(
            [str(BIN / "vec-inf-flows"), "run", "cleanup", "--json-mode"],
            env=clean_environment(PREFECT_HOME=str(tmp_path / "prefect-home-reaper"), **shared),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert reaped.returncode == 0, reaped.stderr[-3000:]
        rows = rows_by_job(json.loads(reaped.stdout)["result"], "job_id")
        for job_id, run in ((job_a, run_a), (job_b, run_b_id)):
            assert job_id in rows, f"job {job_id} missing from the reaper's table: {reaped.stdout}"
            assert rows[job_id]["action"] == "reported", rows[job_id]
            assert rows[job_id]["flow_run_id"] == run
            assert "is on another Prefect server" in rows[job_id]["reason"]
            assert rows[job_id]["lease"] == "held"
        assert worker.api_url in rows[job_a]["reason"]

        # The shipped reaper deployment, as its schedule runs it, on A's own server.
        reaper = deployed.api.run_deployment(
            deployed.deployment_id("cleanup-orphaned-servers/reaper"), {}
        )
        final = deployed.api.wait_final(reaper, timeout=180)
        assert final["state_type"] == "COMPLETED", final["state"]
        (table,) = [a for a in deployed.api.artifacts(reaper) if a["key"] == "vec-inf-cleanup"]
        shipped = rows_by_job(json.loads(table["data"]), "Job")
        assert {job_a, job_b} <= set(shipped), table["data"]
        assert shipped[job_a]["Action"] == "kept", shipped[job_a]
        assert shipped[job_a]["Why"] == f"owner flow run {run_a} is still active (Running)"
        assert shipped[job_b]["Action"] == "reported", shipped[job_b]
        assert "is on another Prefect server" in shipped[job_b]["Why"]

        assert in_squeue({job_a, job_b}) == {job_a, job_b}  # neither reaper cancelled anything
        assert deployed.api.flow_run(run_a)["state_type"] == "RUNNING" and run_b.poll() is None
        assert busy_jobs(client, [job_a, job_b]) == {run_a: job_a, run_b_id: job_b}

        # A lost machine: the worker, A's flow-run process and B die at once, by SIGKILL.
        flow_processes = flow_run_processes(run_a)
        assert flow_processes, "no flow-run process found for run A"
        os.killpg(worker.process.pid, signal.SIGKILL)
        for pid in flow_processes:
            os.kill(pid, signal.SIGKILL)
        run_b.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        run_b.wait(30)
        wait_until(
            lambda: not temporary_servers(home_b), 10, "B's temporary Prefect server to exit"
        )

        left = wait_until(
            lambda: not in_squeue({job_a, job_b}) or None,
            BAR,
            f"jobs {job_a} and {job_b} to end by their leases (no reaper, no automation)",
            interval=1,
        )
        took = time.monotonic() - killed
        print(f"worker + flow-run process + CLI run SIGKILLed: both jobs gone after {took:.1f} s")
        assert left is True and took <= BAR
        for job_id in (job_a, job_b):
            status = client.status(job_id)
            assert status.server_status.value == "SHUTDOWN", status
            assert (status.detail or "").startswith("owner stopped renewing at "), status
    finally:
        if run_b.poll() is None:
            stop_process_group(run_b)
        for pid in temporary_servers(home_b):
            os.kill(pid, signal.SIGKILL)
        worker.cancel_jobs()  # after a failure, never leave A or B to the later tests
        if worker.process.poll() is not None:
            worker.restart()  # the session's later tests need a worker
