"""Several replicas: least-outstanding spreading, a killed replica, relaunch through the hook."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from vec_inf_flows.errors import ServerError
from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload import Progress, Replica, RetryPolicy, RunOptions, run_chunk

from .conftest import read_records, sim_args, write_requests

RETRY = RetryPolicy(max_attempts=10, base_delay_s=0.01, max_delay_s=0.05)
# Slow enough that a kill lands while requests are in flight: 20 tokens at 200 tok/s = 0.1 s.
SLOW = {"seqs": 4, "tokens_per_second": 200}


def test_a_replica_killed_mid_run_leaves_the_others_to_finish(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 90, max_tokens=20)
    output = tmp_path / "out.jsonl"
    with ExitStack() as stack:
        servers = [stack.enter_context(SimServer(sim_args(**SLOW))) for _ in range(3)]
        victim = servers[0]

        def kill_after_some(progress: Progress) -> None:
            if progress.done == 15 and victim.process.poll() is None:
                victim.kill()

        summary = run_chunk(
            source,
            output,
            [s.base_url for s in servers],
            options=RunOptions(concurrency=12, retry=RETRY),
            on_progress=kill_after_some,
        )

    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(90))
    assert summary.ok == 90 and all(r["ok"] for r in records)
    served = Counter(r["replica"] for r in records)
    # Before the kill the work was spread; after it the survivors took the rest.
    assert 0 < served[victim.base_url] < 30
    assert served[servers[1].base_url] > 30 and served[servers[2].base_url] > 30
    moved = [r for r in records if any(n["replica"] == victim.base_url for n in r["retries"])]
    assert all(r["replica"] != victim.base_url for r in moved)


def test_the_hook_relaunches_a_dead_replica_and_the_run_continues(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 40, max_tokens=20)
    output = tmp_path / "out.jsonl"
    with ExitStack() as stack:
        first = stack.enter_context(SimServer(sim_args(**SLOW)))
        relaunched: list[SimServer] = []
        reasons: list[str] = []

        def relaunch(dead: Replica, reason: str) -> Replica:
            reasons.append(reason)
            server = stack.enter_context(SimServer(sim_args(**SLOW)))
            relaunched.append(server)
            return Replica(server.base_url)

        def kill_after_some(progress: Progress) -> None:
            if progress.done == 10 and first.process.poll() is None:
                first.kill()

        summary = run_chunk(
            source,
            output,
            [first.base_url],
            options=RunOptions(concurrency=4, retry=RETRY),
            on_progress=kill_after_some,
            on_replica_failed=relaunch,
        )

    records = read_records(output)
    assert summary.ok == 40 and len(records) == 40
    assert len(relaunched) == 1 and reasons[0].startswith("connection refused")
    served = Counter(r["replica"] for r in records)
    assert served[first.base_url] >= 10 and served[relaunched[0].base_url] > 0


def test_losing_every_replica_stops_the_run_and_a_rerun_completes(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 40, max_tokens=20)
    output = tmp_path / "out.jsonl"
    with SimServer(sim_args(**SLOW)) as doomed:

        def kill_after_some(progress: Progress) -> None:
            if progress.done == 10 and doomed.process.poll() is None:
                doomed.kill()

        with pytest.raises(ServerError, match="Every server failed"):
            run_chunk(
                source,
                output,
                [doomed.base_url],
                options=RunOptions(concurrency=4, retry=RETRY),
                on_progress=kill_after_some,
            )
    partial = read_records(output)
    # Unfinished requests are not written as failures: they are left for the rerun.
    assert 10 <= len(partial) < 40 and all(r["ok"] for r in partial)

    with SimServer(sim_args()) as fresh:
        summary = run_chunk(source, output, [fresh.base_url], options=RunOptions(retry=RETRY))
    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(40))
    assert summary.skipped == len(partial) and summary.ok == 40 - len(partial)
