"""Capacity is real: at most max_num_seqs decode at once, the rest wait, tokens flow at the rate."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from vec_inf_flows.sim.process import SimServer

MAX_NUM_SEQS = 2
TOKENS_PER_SECOND = 100.0
REQUESTS = 6
MAX_TOKENS = 12


def gauges(text: str) -> dict[str, float]:
    wanted = {"vllm:num_requests_running", "vllm:num_requests_waiting"}
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in wanted
    }


async def load(base_url: str, url: str) -> tuple[list[int], list[dict[str, float]], float]:
    body = {"prompt": "Fill the queue", "max_tokens": MAX_TOKENS, "ignore_eos": True}
    samples: list[dict[str, float]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        calls = [client.post(base_url + "/completions", json=body) for _ in range(REQUESTS)]
        pending = asyncio.gather(*calls)
        while not pending.done():
            samples.append(gauges((await client.get(url + "/metrics")).text))
            await asyncio.wait([pending], timeout=0.05)
        elapsed = time.monotonic() - started
        answers = await pending
    return [a.json()["usage"]["completion_tokens"] for a in answers], samples, elapsed


def test_requests_queue_beyond_max_num_seqs_and_rate_is_capped() -> None:
    args = ["/m/tiny", "--max-num-seqs", str(MAX_NUM_SEQS)]
    args += ["--sim-tokens-per-second", str(TOKENS_PER_SECOND), "--sim-ttft", "0"]
    with SimServer(args) as sim:
        tokens, samples, elapsed = asyncio.run(load(sim.base_url, sim.url))
        metrics = httpx.get(sim.url + "/metrics").text
    assert tokens == [MAX_TOKENS] * REQUESTS
    assert any(s["vllm:num_requests_waiting"] > 0 for s in samples)
    assert max(s["vllm:num_requests_running"] for s in samples) <= MAX_NUM_SEQS
    # Each slot yields one token at once, then TOKENS_PER_SECOND: the batch can go no faster.
    decode_steps = (MAX_TOKENS - 1) * REQUESTS / MAX_NUM_SEQS
    assert elapsed >= decode_steps / TOKENS_PER_SECOND
    queue_time = next(
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "vllm:request_queue_time_seconds_sum"
    )
    assert queue_time > 0
