"""Ray's port blocks: clear of the kernel's and Ray's own ranges, one per node, checked free."""

from __future__ import annotations

import socket

import pytest

from vec_inf_flows.scripts import nodeports
from vec_inf_flows.scripts.nodeports import (
    BLOCK_SIZE,
    FIRST_WORKER_PORT,
    block_is_clean,
    candidate_blocks,
    choose_block,
    port_region,
    ray_port_args,
)


@pytest.mark.parametrize(
    ("ephemeral", "region"),
    [
        ((32768, 60999), (20000, 32767)),  # Linux's default: the stretch below it
        ((49152, 65535), (20000, 49151)),  # IANA's range
        ((1024, 50000), (50001, 65535)),  # a wide range: what is left above it
        ((1024, 65535), (20000, 65535)),  # everything ephemeral: the free checks must do
    ],
)
def test_the_region_avoids_the_ephemeral_range(
    ephemeral: tuple[int, int], region: tuple[int, int]
) -> None:
    assert port_region(ephemeral) == region


def test_blocks_never_touch_rays_defaults() -> None:
    assert not block_is_clean(19990)  # overlaps the default worker range (10002-19999)
    assert not block_is_clean(44200)  # holds the autoscaler's metrics port 44217
    assert block_is_clean(20000)


@pytest.mark.parametrize("nnodes", [1, 2, 3, 8])
def test_ranks_of_one_job_never_share_a_block(nnodes: int) -> None:
    seen: dict[int, int] = {}
    for rank in range(nnodes):
        for attempt in (1, 2, 3):
            for start in candidate_blocks("4242", rank, nnodes, attempt):
                assert seen.setdefault(start, rank) == rank
                assert start % BLOCK_SIZE == 20000 % BLOCK_SIZE


def test_jobs_start_from_different_blocks_and_attempts_move_on() -> None:
    firsts = {candidate_blocks(str(job), 0, 2, 1)[0] for job in range(100, 140)}
    assert len(firsts) > 30
    assert candidate_blocks("7", 1, 2, 1)[0] != candidate_blocks("7", 1, 2, 2)[0]


def test_a_block_with_a_busy_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodeports, "ephemeral_range", lambda: (32768, 60999))
    first = candidate_blocks("99", 0, 2, 1)[0]
    with socket.socket() as busy:
        busy.bind(("", first + FIRST_WORKER_PORT + 5))  # one worker port of the first block
        busy.listen()
        chosen = choose_block("99", 0, 2, 1)
    assert chosen != first and chosen in candidate_blocks("99", 0, 2, 1)


def test_every_flag_gets_its_own_port_inside_the_block() -> None:
    head, head_env = ray_port_args(22016, head=True)
    worker, worker_env = ray_port_args(22016, head=False)
    singles = [int(flag.split("=")[1]) for flag in head if "worker" not in flag]
    singles += [int(value) for value in head_env.values()]
    assert len(set(singles)) == len(singles)
    assert all(22016 <= port < 22016 + FIRST_WORKER_PORT for port in singles)
    assert head[-2:] == ["--min-worker-port=22032", f"--max-worker-port={22016 + BLOCK_SIZE - 1}"]
    assert "--port=22016" in head and not any(flag.startswith("--port=") for flag in worker)
    assert worker_env == {}
    assert set(head_env) == {"AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT"}
