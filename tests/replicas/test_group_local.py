"""A replica group on the local backend (real processes, no Slurm): the watcher feeding runs.

A flow runs its dataset chunk by chunk, one run each, with one watcher: every run must start
with the replicas already READY, and the budget must hold back what it does not allow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.replicas import EventKind, GroupWatcher, ReplicaEvent, ReplicaGroup, ReplicaPlan
from vec_inf_flows.workload import RunOptions, run_chunk
from vec_inf_flows.workload.reader import iter_chunks
from vec_inf_flows.workload.replicas import NoLiveReplicaError


@pytest.fixture
def client(tmp_path: Path) -> Iterator[VecInfClient]:
    backend = LocalBackend(tmp_path / "state" / "local", kill_wait=2.0)
    yield VecInfClient(backend=backend, state_dir=tmp_path / "state")
    backend.cancel(backend.store.all_ids())  # whatever a failed test left running


def plan(tmp_path: Path, **extra: object) -> ReplicaPlan:
    options = LaunchOptions(
        engine="sim",
        time="00:05:00",
        log_dir=str(tmp_path / "logs"),
        vllm_args="--max-num-seqs=4,--sim-tokens-per-second=200,--sim-startup-delay=0.2",
    )
    return ReplicaPlan.model_validate(
        {"model_name": "SmolLM2-135M-Instruct", "options": options, **extra}
    )


def test_one_watcher_feeds_chunk_after_chunk(client: VecInfClient, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"id": f"r{n}", "prompt": "p", "max_tokens": 10} for n in range(60)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "out.jsonl"
    group = ReplicaGroup.launch(client, plan(tmp_path, replicas=2))
    events: list[ReplicaEvent] = []
    watcher = GroupWatcher(group, on_event=events.append)
    try:
        for chunk in iter_chunks(source, 20):
            summary = run_chunk(
                source,
                output,
                [],
                chunk=chunk,
                options=RunOptions(),
                membership=watcher.changes(interval=0.3),
            )
            assert summary.ok == 20
    finally:
        watcher.stop()
        group.shutdown()
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(60))
    # Each replica was announced once, yet later chunks used them without a new READY event.
    ready = [e.job_id for e in events if e.kind is EventKind.READY]
    assert sorted(ready) == sorted(group.replica_ids())
    late = {r["replica"] for r in records if int(r["id"][1:]) >= 40}
    assert late  # the last chunk ran on replicas announced during the first


def test_the_budget_holds_back_replicas(client: VecInfClient, tmp_path: Path) -> None:
    group = ReplicaGroup.launch(client, plan(tmp_path, replicas=3, max_concurrent=2))
    try:
        assert len(group.replica_ids()) == 2  # the third waits for room
        watcher = GroupWatcher(group)
        assert not [e for e in watcher.poll() if e.kind is EventKind.LAUNCHED]
        client.shutdown(group.replica_ids()[:1])  # one ends: room for the third
        for _ in range(100):
            if [e for e in watcher.poll() if e.kind is EventKind.LAUNCHED]:
                break
            time.sleep(0.2)
        assert len(group.replica_ids()) == 3
        assert len(watcher.active) == 2
    finally:
        group.shutdown()


def test_no_replica_ready_in_time_ends_the_run_cleanly(
    client: VecInfClient, tmp_path: Path
) -> None:
    slow = plan(tmp_path, replicas=1).options.model_copy(
        update={"vllm_args": "--sim-startup-delay=60"}
    )
    group = ReplicaGroup.launch(client, plan(tmp_path, replicas=1, options=slow))
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": "p", "max_tokens": 1}) + "\n")
    watcher = GroupWatcher(group)
    started = time.monotonic()
    try:
        with pytest.raises(NoLiveReplicaError, match="no server ever became ready"):
            run_chunk(
                source,
                tmp_path / "out.jsonl",
                [],
                options=RunOptions(model="m"),
                membership=watcher.changes(interval=0.2, ready_timeout=1.5),
            )
    finally:
        group.shutdown()
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()
