"""``vec-inf-flows run`` without a Prefect server, interrupted mid-request: Ctrl-C (SIGINT to the
terminal's process group), ``kill`` (SIGTERM) and ``kill -9``. The temporary Prefect server the
run started must be gone within seconds every time; after SIGINT and SIGTERM the run's own
teardown also leaves no job. After SIGKILL nothing of the run's can act: the job ends by itself
once the run's lease lapses (``--lease-renew 5 --lease-lapse 20``, as a user would pass them),
within the lease + 60 s, with no reaper and no Prefect automation anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy_helpers import clean_environment, temporary_servers, wait_until
from testkit import Sandbox

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
SERVER_GONE_WITHIN = 10.0
RENEW, LAPSE = 5, 20


def request_in_flight(sandbox: Sandbox, run: subprocess.Popen[bytes], log: Path) -> str:
    """The run's one job, once a request is being generated on it."""

    def probe() -> str | None:
        if run.poll() is not None:
            raise AssertionError(f"the run ended early:\n{log.read_text()[-3000:]}")
        ids = sandbox.job_ids()
        if len(ids) != 1:
            return None
        try:
            running = sandbox.client.metrics(ids[0]).metrics.requests_running
        except Exception:  # not READY yet
            return None
        return ids[0] if running else None

    return wait_until(probe, 180, "a request in flight on the run's server")


def job_gone_after(job_id: str, within: float) -> float:
    """Seconds until Slurm runs no part of the job (COMPLETING still counts)."""
    started = time.monotonic()

    def gone() -> bool:
        listed = subprocess.run(
            ["squeue", "-h", "--states=all", "-o", "%i", f"--jobs={job_id}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return not listed.stdout.split()

    wait_until(gone, within, f"job {job_id} to end by its lease", interval=1)
    return time.monotonic() - started


SIGNALS = {
    "Ctrl-C": (signal.SIGINT, True),  # a terminal signals the whole foreground process group
    "SIGTERM": (signal.SIGTERM, False),
    "SIGKILL": (signal.SIGKILL, False),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_an_interrupted_run_leaves_no_prefect_server(
    sandbox: Sandbox, tmp_path: Path, name: str
) -> None:
    signum, to_group = SIGNALS[name]
    dataset = tmp_path / "slow.jsonl"
    dataset.write_text(
        json.dumps({"id": "slow", "prompt": "Tell a long story.", "max_tokens": 1500}) + "\n"
    )
    prefect_home = tmp_path / "prefect-home"
    env = clean_environment(
        PREFECT_HOME=str(prefect_home),
        VEC_INF_FLOWS_HOME=str(sandbox.home),
        VEC_INF_LOG_DIR=str(sandbox.logs),
    )
    log = tmp_path / "run.log"
    command = [
        sys.executable, "-m", "vec_inf_flows.cli.main", "run", "serve-and-run",
        "--model", MODEL, "--engine", "sim", "--time", "00:10:00",
        "--vllm-args=--sim-tokens-per-second=2,--sim-startup-delay=0.5",
        "--input", str(dataset), "--output", str(tmp_path / "out.jsonl"), "--ready-timeout", "180",
        "--lease-renew", str(RENEW), "--lease-lapse", str(LAPSE),
    ]  # fmt: skip
    with log.open("wb") as output:
        run = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        job_id = request_in_flight(sandbox, run, log)
        assert temporary_servers(prefect_home), "no temporary server found while the run worked"

        if to_group:
            os.killpg(run.pid, signum)
        else:
            run.send_signal(signum)

        run.wait(60)
        wait_until(
            lambda: not temporary_servers(prefect_home),
            SERVER_GONE_WITHIN,
            f"the temporary Prefect server to exit after {name}",
        )
        if signum != signal.SIGKILL:
            wait_until(lambda: not sandbox.squeue_ids(), 30, f"job {job_id} to leave squeue")
        else:
            took = job_gone_after(job_id, LAPSE + 60)
            print(f"run SIGKILLed: job {job_id} gone after {took:.1f} s (lease {LAPSE} s)")
            status = sandbox.client.status(job_id)
            assert status.server_status.value == "SHUTDOWN", status
            assert (status.detail or "").startswith("owner stopped renewing at "), status
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in temporary_servers(prefect_home):  # never leave one behind, even on failure
            os.kill(pid, signal.SIGKILL)
