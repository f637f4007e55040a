"""Teardown when the flow's process is interrupted: SIGINT and SIGTERM, flow in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from prefect_fakes import BASE_URL_ENV, STATE_ENV

pytestmark = pytest.mark.prefect

HERE = Path(__file__).parent
RUNNER = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from vec_inf_flows.flows import serve_and_run
serve_and_run("SmolLM2-135M-Instruct", workload="prefect_fakes:blocking_workload",
              launch_options={"engine": "sim", "time": "00:10:00"})
"""


def wait_for(path: Path, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"flow never reached its workload:\n{out[-3000:]}")
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_workload_shuts_the_server_down(tmp_path: Path, signum: int) -> None:
    state = tmp_path / "cluster"
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "VEC_INF_FLOWS_CLIENT_FACTORY": "prefect_fakes:factory_from_env",
        STATE_ENV: str(state),
        BASE_URL_ENV: "http://127.0.0.1:9/v1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(state / "in-workload", process)
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    jobs = json.loads((state / "jobs.json").read_text())
    assert [job["status"] for job in jobs.values()] == ["SHUTDOWN"]
    assert process.returncode != 0
