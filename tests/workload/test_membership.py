"""Replicas joining and leaving a running workload (real simulator servers over HTTP)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload import Replica, RetryPolicy, RunOptions, run_chunk
from vec_inf_flows.workload.concurrency import Window
from vec_inf_flows.workload.membership import Drain, Joined, Left, MembershipChange
from vec_inf_flows.workload.replicas import NoLiveReplicaError, Outcome, ReplicaPool

from .conftest import read_records, sim_args, write_requests

RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)
SLOW = {"seqs": 4, "tokens_per_second": 100}  # 20 tokens: 0.2 s a request, 20 req/s a server


def test_work_starts_on_the_first_replica_and_the_others_join(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 120, max_tokens=20)
    output = tmp_path / "out.jsonl"
    first_done: list[float] = []
    with ExitStack() as stack:
        servers = [stack.enter_context(SimServer(sim_args(**SLOW))) for _ in range(3)]
        started = time.monotonic()

        async def arrivals() -> AsyncIterator[MembershipChange]:
            for delay, server in zip((0.3, 1.5, 0.5), servers, strict=True):
                await asyncio.sleep(delay)
                yield Joined(Replica(server.base_url, max_concurrency=4))

        summary = run_chunk(
            source,
            output,
            [],
            options=RunOptions(retry=RETRY),
            membership=arrivals(),
            on_progress=lambda p: first_done or first_done.append(time.monotonic() - started),
        )

    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(120))
    assert summary.ok == 120
    # The first result came from the first replica, long before the last one joined (2.3 s).
    assert first_done[0] < 1.5
    served = Counter(r["replica"] for r in records)
    assert set(served) == {s.base_url for s in servers}
    assert served[servers[0].base_url] > served[servers[2].base_url]


def test_a_retired_replica_moves_its_requests_without_spending_attempts(tmp_path: Path) -> None:
    """The group saw the job end: its in-flight requests go elsewhere at once."""
    source = write_requests(tmp_path / "in.jsonl", 60, max_tokens=40)
    output = tmp_path / "out.jsonl"
    with ExitStack() as stack:
        stuck = stack.enter_context(SimServer(sim_args(seqs=4, tokens_per_second=1)))
        good = stack.enter_context(SimServer(sim_args(**SLOW)))

        async def changes() -> AsyncIterator[MembershipChange]:
            yield Joined(Replica(stuck.base_url, max_concurrency=4))
            yield Joined(Replica(good.base_url, max_concurrency=4))
            await asyncio.sleep(1.0)  # the stuck one holds requests that would take 40 s
            yield Left(stuck.base_url, "job 12 ended: FAILED")

        run_chunk(
            source,
            output,
            [],
            options=RunOptions(retry=RetryPolicy(max_attempts=1)),
            membership=changes(),
        )

    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(60))
    assert all(r["ok"] and r["attempts"] == 1 for r in records)
    assert {r["replica"] for r in records} == {good.base_url}


def test_no_replica_ever_ready_ends_the_run_without_writing(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 5)
    output = tmp_path / "out.jsonl"

    async def nothing() -> AsyncIterator[MembershipChange]:
        await asyncio.sleep(0.1)
        return
        yield  # an async generator that ends without a replica

    with pytest.raises(NoLiveReplicaError, match="no server ever became ready"):
        run_chunk(source, output, [], options=RunOptions(model="m"), membership=nothing())
    assert not output.exists() or output.read_text() == ""


def test_the_window_follows_the_live_replicas() -> None:
    async def go() -> list[int]:
        window = Window(1)
        seen: list[int] = []

        def follow(live: object) -> None:
            window.resize(sum(r.max_concurrency or 0 for r in live))  # type: ignore[attr-defined]
            seen.append(window.limit)

        pool = ReplicaPool(expecting=True, on_capacity=follow)
        await pool.add(Replica("http://a/v1", 8))
        await pool.add(Replica("http://b/v1", 4))
        await pool.add(Replica("http://a/v1", 8))  # already known: ignored
        await pool.retire("http://a/v1/", "gone")
        await pool.retire("http://b/v1", "gone")
        return seen

    assert asyncio.run(go()) == [8, 12, 4, 1]


def test_window_waiters_are_served_when_it_grows() -> None:
    async def go() -> int:
        window = Window(1)
        await window.acquire()
        waiters = [asyncio.create_task(window.acquire()) for _ in range(3)]
        await asyncio.sleep(0)
        assert window.in_use == 1
        window.resize(3)
        await asyncio.sleep(0)
        granted = sum(w.done() for w in waiters)
        window.resize(1)
        for _ in range(granted + 1):
            window.release()
        await asyncio.gather(*waiters)
        return granted

    assert asyncio.run(go()) == 2


def test_grown_client_shards_never_queue_a_request_behind_a_full_pool() -> None:
    """A run that starts with no replica has a one-connection client; the window then grows.
    Requests must go where a connection is free: one queued in httpcore's pool while a
    replica's attempts were cancelled stayed there for ever (a hang seen on the cluster)."""
    import httpx

    from vec_inf_flows.workload.clients import ClientShards

    async def go() -> list[int]:
        shards = ClientShards(1, httpx.Timeout(1.0), {})
        shards.ensure(9)
        chosen = []
        with shards.lease() as first, shards.lease() as second, shards.lease() as third:
            chosen = [shards.clients.index(c) for c in (first, second, third)]
        await shards.aclose()
        return chosen

    assert asyncio.run(go()) == [1, 1, 1]  # the 8-connection client, not the full 1-slot one


def test_a_drained_replica_finishes_what_it_holds_and_gets_nothing_new(tmp_path: Path) -> None:
    """Draining (an elastic group giving a replica back): its requests finish there, none is
    moved or sent twice, and the group learns when it holds nothing."""
    source = write_requests(tmp_path / "in.jsonl", 80, max_tokens=20)
    output = tmp_path / "out.jsonl"
    seen: dict[str, object] = {}
    with ExitStack() as stack:
        a, b = (stack.enter_context(SimServer(sim_args(**SLOW))) for _ in range(2))

        async def changes() -> AsyncIterator[MembershipChange]:
            yield Joined(Replica(a.base_url, max_concurrency=4))
            yield Joined(Replica(b.base_url, max_concurrency=4))
            await asyncio.sleep(0.5)  # both busy
            drain = Drain(None, "backlog drained")
            seen["drained_at"] = time.monotonic()
            yield drain
            seen["chosen"] = list(drain.chosen)
            await asyncio.wait_for(drain.idle.wait(), 10)
            seen["idle_at"] = time.monotonic()
            seen["last_drain"] = Drain(None, "never the last one")
            yield seen["last_drain"]

        summary = run_chunk(
            source, output, [], options=RunOptions(retry=RETRY), membership=changes()
        )

    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(80))
    assert summary.ok == 80 and all(r["attempts"] == 1 for r in records)  # nothing re-sent
    (chosen,) = seen["chosen"]  # type: ignore[misc]
    assert chosen in (a.base_url, b.base_url)
    # Its in-flight requests (a batch of 0.2 s) finished, and nothing more was sent to it.
    assert float(seen["idle_at"]) - float(seen["drained_at"]) < 2  # type: ignore[arg-type]
    on_drained = [r for r in records if r["replica"] == chosen]
    assert 0 < len(on_drained) < 40
    last = seen["last_drain"]
    assert isinstance(last, Drain) and last.chosen == [] and last.idle.is_set()


def test_draining_picks_the_replica_done_soonest_not_the_one_holding_fewest_requests() -> None:
    """An evaluation's tail: one replica holds one long generation, another two short ones.
    Draining the long one would hold its GPUs until the very end (the elastic group's release
    used to land only with the run's last request that way)."""

    async def go() -> tuple[str | None, str | None]:
        pool = ReplicaPool([Replica("http://short:1/v1"), Replica("http://long:1/v1")])
        first_short = await pool.acquire(max_tokens=20)
        holds_long = await pool.acquire(max_tokens=2000)
        second_short = await pool.acquire(max_tokens=20)
        assert first_short is second_short is not holds_long
        idle = asyncio.Event()
        chosen = await pool.drain(None, "backlog drained", idle)
        pool.release(first_short, Outcome.OK, max_tokens=20)
        pool.release(second_short, Outcome.OK, max_tokens=20)
        assert idle.is_set() and holds_long.alive
        assert (holds_long.outstanding, holds_long.held_tokens) == (1, 2000)
        # Without sizes (requests that do not say max_tokens) the count decides.
        plain = ReplicaPool([Replica("http://a:1/v1"), Replica("http://b:1/v1")])
        busy = await plain.acquire()
        await plain.acquire()
        await plain.acquire()
        plain.release(busy, Outcome.OK)
        return chosen, await plain.drain(None, "backlog drained", asyncio.Event())

    assert asyncio.run(go()) == ("http://short:1/v1", "http://a:1/v1")
