"""Status and shutdown never lie, on the real cluster with the simulator.

Faults a healthy cluster will not make on demand (a failing ``scancel``, an accounting database
that does not answer) come from shims first on PATH; the jobs, Slurm and the servers are real.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import httpx
from lifecycle_helpers import (
    MODEL,
    SIM,
    cli,
    one_error_line,
    shim,
    slurm_state,
    status_json,
    still_alive,
    wait_gone,
)
from testkit import Sandbox, engine_pid

from vec_inf_flows.models import ServerStatus


def test_a_failing_scancel_never_makes_a_running_server_shutdown(
    sandbox: Sandbox, tmp_path: object
) -> None:
    client = sandbox.client
    launched = client.launch(MODEL, **SIM)
    client.wait_until_ready(launched.job_id, timeout=120, poll_interval=0.5)
    broken = shim(
        sandbox.home / "shims",
        "scancel",
        "scancel: error: Kill job error on job id 1: Access/permission denied",
    )
    line = one_error_line(cli(sandbox, "shutdown", launched.job_id, env=broken))
    assert "permission denied" in line.lower()
    for _ in range(3):  # and stays so: nothing was cancelled
        status = status_json(sandbox, launched.job_id)
        assert status["server_status"] == "READY", status
        assert still_alive(launched.job_id)
        time.sleep(1)
    assert (
        httpx.get(status["base_url"].removesuffix("/v1") + "/health", timeout=5).status_code == 200
    )

    done = cli(sandbox, "shutdown", launched.job_id)  # the real scancel
    assert done.returncode == 0, done.stderr
    assert not still_alive(launched.job_id)  # returned only once out of squeue's live states
    status = status_json(sandbox, launched.job_id)
    assert (status["server_status"], status["detail"]) == ("SHUTDOWN", "shut down on request")


def test_shutdown_of_a_failed_server_keeps_it_failed_with_its_reason(sandbox: Sandbox) -> None:
    client = sandbox.client
    # The engine dies after its first request and lingers, dead, while Slurm still runs it.
    crashing = "--sim-crash-after=1,--sim-dead-linger=600"
    launched = client.launch(MODEL, **SIM, vllm_args=crashing)
    ready = client.wait_until_ready(launched.job_id, timeout=120, poll_interval=0.5)
    assert ready.base_url is not None
    httpx.post(
        f"{ready.base_url}/completions",
        json={"model": MODEL, "prompt": "hi", "max_tokens": 2},
        timeout=30,
    )
    deadline = time.monotonic() + 60
    while (failed := client.status(launched.job_id)).server_status is not ServerStatus.FAILED:
        assert time.monotonic() < deadline, failed
        time.sleep(0.5)
    assert failed.slurm_state == "RUNNING" and failed.failed_reason

    client.shutdown(launched.job_id)
    assert not still_alive(launched.job_id)
    after = client.status(launched.job_id)
    assert after.server_status is ServerStatus.FAILED
    assert after.failed_reason == failed.failed_reason


def test_shutdown_refuses_a_job_it_did_not_launch_and_an_unknown_id(sandbox: Sandbox) -> None:
    wrap = ["--wrap", "sleep 300"]
    foreign = subprocess.run(
        ["sbatch", "--parsable", "-c", "1", "--mem=100M", "-o", "/dev/null", *wrap],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while slurm_state(foreign) != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        status = status_json(sandbox, foreign)
        assert status["server_status"] == "FOREIGN" and "not launched" in status["detail"]

        line = one_error_line(cli(sandbox, "shutdown", foreign))
        assert "not launched by vec-inf-flows" in line and "--force" in line
        time.sleep(2)
        assert slurm_state(foreign) == "RUNNING"  # it survives

        unknown = cli(sandbox, "shutdown", "99999999")
        assert "is unknown" in one_error_line(unknown)

        forced = cli(sandbox, "shutdown", "--force", foreign)
        assert forced.returncode == 0, forced.stderr
        assert not still_alive(foreign)
    finally:
        subprocess.run(["scancel", foreign], capture_output=True, timeout=30)


def test_a_stopped_engine_is_failed_after_the_grace_and_wait_returns(sandbox: Sandbox) -> None:
    grace = 8.0
    client = sandbox.client
    launched = client.launch(MODEL, **SIM, health_grace=grace)
    client.wait_until_ready(launched.job_id, timeout=120, poll_interval=0.5)
    time.sleep(6)  # the job-side watch has seen it answer
    pid = engine_pid(launched.job_id)
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        waited = cli(sandbox, "wait", launched.job_id, "--timeout", "600", timeout=300)
        took = time.monotonic() - stopped
        line = one_error_line(waited)
        assert "FAILED" in line and "not answering /health since" in line
        # grace + the watch's poll (5 s) and probe (3 s) + wait's own poll (5 s)
        print(f"SIGSTOPped engine: FAILED and wait returned after {took:.1f} s (grace {grace:g})")
        assert took <= grace + 5 + 2 * 3 + 5 + 5
        status = status_json(sandbox, launched.job_id)
        assert status["server_status"] == "FAILED" and status["slurm_state"] == "RUNNING"
        client.shutdown(launched.job_id)  # Slurm SIGKILLs the stopped engine after KillWait
        after = client.status(launched.job_id)
        assert after.server_status is ServerStatus.FAILED
        assert after.failed_reason == status["failed_reason"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_forgotten_job_is_decided_from_its_job_dir_when_sacct_cannot_answer(
    sandbox: Sandbox,
) -> None:
    client = sandbox.client
    launched = client.launch(MODEL, **SIM)
    client.wait_until_ready(launched.job_id, timeout=120, poll_interval=0.5)
    client.shutdown(launched.job_id)
    wait_gone(launched.job_id, 30)
    deadline = time.monotonic() + 90
    while slurm_state(launched.job_id):  # squeue keeps ended jobs for MinJobAge (10 s here)
        assert time.monotonic() < deadline, "Slurm kept the ended job past MinJobAge"
        time.sleep(2)
    down = shim(
        sandbox.home / "shims",
        "sacct",
        "sacct: error: Problem talking to the database: Connection refused",
    )
    down["VEC_INF_SLURM_ATTEMPTS"] = "1"  # no retries: the answer comes at once
    status = status_json(sandbox, launched.job_id, env=down)
    assert (status["server_status"], status["detail"]) == ("SHUTDOWN", "shut down on request")
    line = one_error_line(cli(sandbox, "status", "99999998", env=down))
    assert "is unknown" in line and "accounting did not answer" in line
