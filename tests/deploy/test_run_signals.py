"""``vec-inf-flows run`` without a Prefect server, interrupted mid-request: Ctrl-C (SIGINT to the
terminal's process group), ``kill`` (SIGTERM) and ``kill -9``. The temporary Prefect server the
run started must be gone within seconds every time; after SIGINT and SIGTERM the run's own
teardown also leaves no job (after SIGKILL nothing of the run's can act: the job is the lease's).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_helpers import clean_environment, wait_until
from testkit import Sandbox

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
SERVER_GONE_WITHIN = 10.0


def temporary_servers(prefect_home: Path) -> list[int]:
    """Pids of API servers started for a run whose PREFECT_HOME is ``prefect_home``."""
    marker = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        serves = b"prefect_server" in command or b"uvicorn" in command
        if serves and marker in environ and state != "Z":
            found.append(int(entry.name))
    return found


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
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in temporary_servers(prefect_home):  # never leave one behind, even on failure
            os.kill(pid, signal.SIGKILL)
