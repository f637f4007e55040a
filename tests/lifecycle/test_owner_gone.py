"""No server outlives its owner: SIGKILL the owner and the job ends by itself, no reaper.

The lease is short here (renewed every 3 s, lapsing after 12 s) so the tests stay fast; the bar
is the job gone within the lease + 60 s. Each test prints what it measured.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from lifecycle_helpers import (
    MODEL,
    SIM,
    SIM_FLAGS,
    cli,
    slurm_state,
    status_json,
    still_alive,
    wait_gone,
)
from testkit import REPO, Sandbox

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.models import ServerStatus

RENEW, LAPSE = 3.0, 12.0
BAR = LAPSE + 60
LEASE_FLAGS = ["--lease-renew", str(RENEW), "--lease-lapse", str(LAPSE)]

OWNER = """
import json, sys, time
from vec_inf_flows import LeasePolicy, VecInfClient
client = VecInfClient()
lease = LeasePolicy(renew_every=float(sys.argv[3]), lapse_after=float(sys.argv[4]))
launched = client.launch(sys.argv[1], lease=lease, **json.loads(sys.argv[2]))
print(launched.job_id, launched.job_dir, flush=True)
client.wait_until_ready(launched.job_id, timeout=120, poll_interval=0.5)
print("READY", flush=True)
time.sleep(3600)
"""


def lease_counter(job_dir: Path) -> int:
    return int(json.loads((job_dir / "lease.json").read_text()).get("counter", 0))


def start_owner(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, Path]:
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), MODEL, json.dumps(SIM), str(RENEW), str(LAPSE)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert owner.stdout is not None
    job_id, job_dir = owner.stdout.readline().split()
    assert owner.stdout.readline().strip() == "READY"
    return owner, job_id, Path(job_dir)


def assert_stopped_by_the_lease(sandbox: Sandbox, job_id: str, owner: str) -> None:
    took = wait_gone(job_id, BAR)
    print(f"{owner} SIGKILLed: job {job_id} gone after {took:.1f} s (lease {LAPSE:g} s)")
    status = status_json(sandbox, job_id)
    assert status["server_status"] == "SHUTDOWN"
    assert status["detail"].startswith("owner stopped renewing at "), status
    assert status["slurm_state"] in ("COMPLETED", None)  # it ended cleanly, not as a failure


def test_python_api_owner_sigkilled_server_ends_within_the_lease(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    owner, job_id, job_dir = start_owner(tmp_path, sandbox.env)
    try:
        time.sleep(LAPSE + RENEW)  # longer than the lapse: the renewals keep it alive
        assert still_alive(job_id) and lease_counter(job_dir) >= 4
        assert status_json(sandbox, job_id)["server_status"] == "READY"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert_stopped_by_the_lease(sandbox, job_id, "Python API owner")


def test_launch_wait_sigkilled_while_waiting_ends_within_the_lease(sandbox: Sandbox) -> None:
    never_ready = ["--vllm-args", "--sim-startup-delay=900"]
    waiting = sandbox.start_cli(
        "launch", MODEL, *SIM_FLAGS, *never_ready, "--wait", *LEASE_FLAGS, "--json-mode"
    )
    try:
        assert waiting.stdout is not None
        launched = json.loads(waiting.stdout.readline())
        job_id, job_dir = launched["job_id"], Path(launched["job_dir"])
        deadline = time.monotonic() + 60
        while slurm_state(job_id) != "RUNNING" or lease_counter(job_dir) < 3:
            assert time.monotonic() < deadline and waiting.poll() is None
            time.sleep(0.5)
        assert status_json(sandbox, job_id)["server_status"] == "LAUNCHING"
    finally:
        waiting.send_signal(signal.SIGKILL)
        waiting.wait()
    assert_stopped_by_the_lease(sandbox, job_id, "launch --wait")


def test_launch_wait_hands_a_ready_server_over_and_idle_timeout_ends_it(sandbox: Sandbox) -> None:
    """Once READY the lease is released (the server lives on, as with vec-inf); the idle
    timeout, read from the engine's request counters, is what stops it here."""
    result = cli(
        sandbox,
        "launch",
        MODEL,
        *SIM_FLAGS,
        "--wait",
        "--lease-renew",
        "1",
        "--lease-lapse",
        "4",
        "--idle-timeout",
        "0.5",
        "--json-mode",
    )
    assert result.returncode == 0, result.stderr
    launched, ready = (json.loads(line) for line in result.stdout.splitlines())
    job_id = launched["job_id"]
    assert ready["server_status"] == "READY"
    lease = json.loads((Path(launched["job_dir"]) / "lease.json").read_text())
    assert lease["released"] is True
    time.sleep(4 + 3)  # past the lapse: a released lease is not enforced
    assert status_json(sandbox, job_id)["server_status"] == "READY"
    took = wait_gone(job_id, 30 + 60)
    print(f"idle timeout of 30 s: job {job_id} gone {took + 7:.1f} s after READY")
    status = status_json(sandbox, job_id)
    assert status["server_status"] == "SHUTDOWN"
    assert status["detail"].startswith("idle for 0.5 min"), status


def test_owner_sigkilled_on_the_local_backend(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**sandbox.env, "VEC_INF_BACKEND": "local"}
    backend = LocalBackend(sandbox.home / "local")
    owner, job_id, _ = start_owner(tmp_path, env)
    try:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        killed = time.monotonic()
        client = VecInfClient(backend=backend, state_dir=sandbox.home)
        while (status := client.status(job_id)).server_status is not ServerStatus.SHUTDOWN:
            assert time.monotonic() - killed < BAR, status
            time.sleep(1)
        took = time.monotonic() - killed
        print(f"local backend, owner SIGKILLed: job {job_id} gone after {took:.1f} s")
        assert status.detail is not None and status.detail.startswith("owner stopped renewing")
        assert backend.query([job_id])[job_id].state == "COMPLETED"
    finally:
        backend.cancel(backend.store.all_ids())


def test_a_batch_stops_every_component_when_its_owner_stops_renewing(sandbox: Sandbox) -> None:
    """Each component's launcher watches its own job dir; the het job ends when all stopped."""
    from vec_inf_flows.lifecycle import LeasePolicy

    batch_file = sandbox.home.parent / "batch.yaml"
    batch_file.write_text(
        "models:\n"
        "  SmolLM2-135M-Instruct:\n    engine: sim\n    time: '00:10:00'\n    cpus_per_task: 1\n"
        "  all-MiniLM-L6-v2:\n    engine: sim\n    time: '00:10:00'\n    cpus_per_task: 1\n"
    )
    client = sandbox.client
    batch = client.batch_launch(
        [MODEL, "all-MiniLM-L6-v2"],
        batch_file,
        lease=LeasePolicy(renew_every=RENEW, lapse_after=LAPSE),
    )
    for job_id in batch.job_ids:
        client.wait_until_ready(job_id, timeout=120, poll_interval=1)
    client.leases.close()  # what a dead owner does: nothing
    took = wait_gone(batch.job_id, BAR)
    print(f"batch owner gone: het job {batch.job_id} gone after {took:.1f} s (lease {LAPSE:g} s)")
    for status in client.statuses(batch.job_ids):
        assert status.server_status is ServerStatus.SHUTDOWN, status
        assert status.detail is not None and status.detail.startswith("owner stopped renewing")
