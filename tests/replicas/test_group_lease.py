"""A replica group's lease: every replica and the router job carry it, and end by themselves when
its owner dies. The user's path: ``launch MODEL --replicas 2 --wait --lease-renew 3
--lease-lapse 12`` SIGKILLed while it waits, on the real local Slurm cluster."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from testkit import Sandbox, wait_until

from vec_inf_flows.lifecycle.owner import OwnerRecord

pytestmark = pytest.mark.slurm

RENEW, LAPSE = 3, 12
NEVER_READY = "--sim-startup-delay=900"  # the wait outlives the test: it is killed mid-wait


def states(job_ids: list[str]) -> dict[str, str]:
    listed = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %T", f"--jobs={','.join(job_ids)}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return dict(line.split() for line in listed.splitlines() if line.strip())


def lease_counter(job_dir: str) -> int:
    return int(json.loads((Path(job_dir) / "lease.json").read_text())["counter"])


def test_a_group_launched_with_wait_ends_by_its_lease_when_the_command_is_killed(
    sandbox: Sandbox,
) -> None:
    launch = [
        "launch", "SmolLM2-135M-Instruct", "--engine", "sim", "--cpus-per-task", "1",
        "--mem-per-node", "1G", "--time", "00:10:00", "--vllm-args", NEVER_READY,
        "--replicas", "2", "--router", "job", "--wait",
        "--lease-renew", str(RENEW), "--lease-lapse", str(LAPSE), "--json-mode",
    ]  # fmt: skip
    waiting = sandbox.start_cli(*launch)
    try:
        assert waiting.stdout is not None
        record = json.loads(waiting.stdout.readline())
        members = record["members"]
        assert [member["role"] for member in members] == ["replica", "replica", "router"]
        ids = [member["job_id"] for member in members]
        wait_until(
            lambda: (
                set(states(ids).values()) == {"RUNNING"}
                and all(lease_counter(m["job_dir"]) >= 3 for m in members)
            ),
            120,
            "every member running, its lease renewed",
            interval=0.5,
        )
        for member in members:
            directory = Path(member["job_dir"])
            config = json.loads((directory / f"{directory.name}.json").read_text())
            owner = OwnerRecord.from_job_json(config)
            assert owner is not None and owner.pid == waiting.pid, member
            assert (directory / "watch.json").exists() and (directory / "jobwatch.py").exists()
    finally:
        waiting.send_signal(signal.SIGKILL)
        waiting.wait()
    killed = time.monotonic()
    wait_until(lambda: not states(ids), LAPSE + 60, "every member to end by the lease", interval=1)
    print(f"group owner SIGKILLed: 3 members gone after {time.monotonic() - killed:.1f} s")
    for job_id in ids:
        status = sandbox.client.status(job_id)
        assert status.server_status.value == "SHUTDOWN", status
        assert (status.detail or "").startswith("owner stopped renewing at "), status
