"""Replica groups on the real local Slurm cluster, with simulator replicas of known capacity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from testkit import Sandbox

from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.replicas import EventKind, GroupWatcher, ReplicaEvent, ReplicaGroup, ReplicaPlan
from vec_inf_flows.workload import Progress, RetryPolicy, RunOptions, run_chunk

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
# 4 sequences x 100 tokens/s per replica; 20-token requests: 0.2 s each, 20 requests/s a replica.
SIM_ARGS = "--max-num-seqs=4,--sim-tokens-per-second=100,--sim-startup-delay=0.5"
RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.05, max_delay_s=0.5)


def options(**extra: object) -> LaunchOptions:
    base: dict[str, object] = {
        "engine": "sim",
        "cpus_per_task": 1,
        "mem_per_node": "1G",
        "time": "00:10:00",
        "vllm_args": SIM_ARGS,
    }
    return LaunchOptions.model_validate({**base, **extra})


def write_requests(path: Path, count: int) -> Path:
    with path.open("w") as handle:
        for n in range(count):
            row = {"id": f"r{n}", "prompt": f"prompt {n}", "max_tokens": 20}
            handle.write(json.dumps(row) + "\n")
    return path


def engine_pids(job_dir: str) -> list[int]:
    """The engine under a replica's launcher (the launcher's pid is in the job JSON)."""
    directory = Path(job_dir)
    config = json.loads((directory / f"{directory.name}.json").read_text())
    launcher = int(config["launcher_pid"])
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    return [int(pid) for pid in children]


def wait_gone(sandbox: Sandbox, within: float = 45.0) -> None:
    deadline = time.monotonic() + within
    while sandbox.squeue_ids() and time.monotonic() < deadline:
        time.sleep(1)
    assert not sandbox.squeue_ids(), f"left in squeue: {sandbox.squeue_ids()}"


@pytest.mark.parametrize("how", ["sigkill-engine", "scancel-job"])
def test_killing_one_of_three_replicas_mid_run(sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    plan = ReplicaPlan(model_name=MODEL, replicas=3, relaunches=1, options=options())
    group = ReplicaGroup.launch(sandbox.client, plan)
    events: list[ReplicaEvent] = []
    watcher = GroupWatcher(group, on_event=events.append)
    source = write_requests(tmp_path / "in.jsonl", 600)
    output = tmp_path / "out.jsonl"
    victim: list[str] = []

    def kill_one(progress: Progress) -> None:
        if progress.done < 100 or victim:
            return
        ready = [e.job_id for e in events if e.kind is EventKind.READY]
        victim.append(ready[0])
        job_dir = next(m.job_dir for m in group.record.members if m.job_id == victim[0])
        if how == "sigkill-engine":
            for pid in engine_pids(job_dir):
                os.kill(pid, signal.SIGKILL)
        else:
            subprocess.run(["scancel", victim[0]], check=True, timeout=30)

    try:
        summary = run_chunk(
            source,
            output,
            [],
            options=RunOptions(retry=RETRY),
            on_progress=kill_one,
            membership=watcher.changes(interval=0.5),
        )
        replacement = next(m for m in group.record.replica_members if m.replaces == victim[0])
        # The replacement comes up even if the run finished first.
        ready = sandbox.client.wait_until_ready(replacement.job_id, timeout=120)
        assert ready.server_status is ServerStatus.READY
    finally:
        watcher.stop()
        group.shutdown()

    records = [json.loads(line) for line in output.read_text().splitlines()]
    ids = [record["id"] for record in records]
    assert len(ids) == 600 and set(ids) == {f"r{n}" for n in range(600)}  # each exactly once
    assert summary.ok == 600 and all(record["ok"] for record in records)
    lost = [e for e in events if e.kind is EventKind.LOST]
    assert [e.job_id for e in lost] == victim
    launched = [e for e in events if e.kind is EventKind.LAUNCHED]
    assert [(e.job_id, e.detail) for e in launched] == [(replacement.job_id, victim[0])]
    served = {record["replica"] for record in records}
    assert len(served) >= 3  # the survivors (and maybe the replacement) took the victim's share
    wait_gone(sandbox)


def test_a_replica_held_pending_does_not_delay_the_run(sandbox: Sandbox, tmp_path: Path) -> None:
    """Two replicas that each need all four GPUs of node2: the second waits PENDING for as
    long as the first runs, and the run neither waits for it nor minds."""
    plan = ReplicaPlan(
        model_name=MODEL, replicas=2, options=options(gpus_per_node=4, nodelist="node2")
    )
    started = time.monotonic()
    group = ReplicaGroup.launch(sandbox.client, plan)
    watcher = GroupWatcher(group)
    first: list[float] = []
    try:
        summary = run_chunk(
            write_requests(tmp_path / "in.jsonl", 60),
            tmp_path / "out.jsonl",
            [],
            options=RunOptions(retry=RETRY),
            on_progress=lambda _: first or first.append(time.monotonic() - started),
            membership=watcher.changes(interval=0.5, ready_timeout=600),
        )
        statuses = sandbox.client.statuses(group.replica_ids())
    finally:
        watcher.stop()
        group.shutdown()
    assert summary.ok == 60
    states = sorted(status.server_status.value for status in statuses)
    assert states == ["PENDING", "READY"], states
    ready_at = first[0]
    assert ready_at < 600  # it did not wait for the replica that cannot start
    wait_gone(sandbox)
