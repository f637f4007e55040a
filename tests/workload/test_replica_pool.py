"""The replica pool's choices, without any network: least outstanding, taking out, replacing."""

from __future__ import annotations

import asyncio

import pytest

from vec_inf_flows.workload.replicas import NoLiveReplicaError, Outcome, Replica, ReplicaPool


def test_least_outstanding_first() -> None:
    async def go() -> list[str]:
        pool = ReplicaPool([Replica("http://a/v1/"), Replica("http://b/v1")])
        first = await pool.acquire()
        second = await pool.acquire()
        third = await pool.acquire()
        pool.release(first, Outcome.OK)
        fourth = await pool.acquire()
        return [s.replica.base_url for s in (first, second, third, fourth)]

    assert asyncio.run(go()) == ["http://a/v1", "http://b/v1", "http://a/v1", "http://b/v1"]


def test_soft_failures_in_a_row_take_a_replica_out_and_success_resets() -> None:
    async def go() -> ReplicaPool:
        pool = ReplicaPool([Replica("http://a/v1"), Replica("http://b/v1")], failure_threshold=3)
        a = pool.states[0]
        for outcome in [Outcome.SOFT_FAILURE, Outcome.SOFT_FAILURE, Outcome.OK]:
            a.outstanding += 1
            pool.release(a, outcome, "dropped")
        assert a.alive
        for _ in range(3):
            a.outstanding += 1
            pool.release(a, Outcome.SOFT_FAILURE, "http_error")
        return pool

    pool = asyncio.run(go())
    assert [s.alive for s in pool.states] == [False, True]
    assert pool.states[0].removed_because == "3 failures in a row (http_error)"


def test_no_replica_left_and_none_coming_raises() -> None:
    async def go() -> None:
        pool = ReplicaPool([Replica("http://a/v1")])
        state = await pool.acquire()
        pool.release(state, Outcome.REFUSED, "connection")
        await pool.acquire()

    with pytest.raises(NoLiveReplicaError, match=r"http://a/v1: connection refused"):
        asyncio.run(go())


def test_waiters_get_the_replacement_the_hook_returns() -> None:
    async def relaunch(dead: Replica, reason: str) -> Replica:
        return Replica("http://new/v1")

    async def go() -> tuple[str, int]:
        pool = ReplicaPool([Replica("http://a/v1")], on_replica_failed=relaunch)
        state = await pool.acquire()
        pool.release(state, Outcome.REFUSED, "connection")
        replacement = await pool.acquire()  # waits for the hook
        await pool.close()
        return replacement.replica.base_url, len(pool.states)

    assert asyncio.run(go()) == ("http://new/v1", 2)


def test_a_hook_that_gives_up_ends_the_wait() -> None:
    calls: list[str] = []

    def give_up(dead: Replica, reason: str) -> None:
        calls.append(dead.base_url)

    async def go() -> None:
        pool = ReplicaPool([Replica("http://a/v1")], on_replica_failed=give_up)
        state = await pool.acquire()
        pool.release(state, Outcome.REFUSED)
        await pool.acquire()

    with pytest.raises(NoLiveReplicaError):
        asyncio.run(go())
    assert calls == ["http://a/v1"]
