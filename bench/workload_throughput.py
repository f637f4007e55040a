"""Throughput of the workload runner against a simulator of known capacity.

The simulator decodes at most ``max-num-seqs`` sequences at ``tokens/s`` each, so its capacity
is their product. The runner should keep every batch slot busy (target: >= 90% of capacity).
The baseline is what the user guide's examples do: one request at a time in a plain loop,
measured in the same run against the same server.

    .venv/bin/python bench/workload_throughput.py [--seqs 16] [--tokens-per-second 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx

from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload import RunOptions, concurrency_for, run_chunk


def write_requests(path: Path, count: int, max_tokens: int) -> None:
    with path.open("w") as handle:
        for n in range(count):
            message = {"role": "user", "content": f"Tell me about item {n}."}
            row = {
                "id": f"q{n}",
                "messages": [message],
                "max_tokens": max_tokens,
                "ignore_eos": True,
            }
            handle.write(json.dumps(row) + "\n")


def sequential_tokens_per_second(base_url: str, count: int, max_tokens: int) -> float:
    """The guide's pattern: one blocking request after another."""
    completion_tokens = 0
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        for n in range(count):
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": f"Tell me about item {n}."}],
                "max_tokens": max_tokens,
                "ignore_eos": True,  # every request decodes max_tokens: a known amount of work
            }
            reply = client.post(base_url + "/chat/completions", json=body)
            reply.raise_for_status()
            completion_tokens += reply.json()["usage"]["completion_tokens"]
    return completion_tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=16, help="the server's --max-num-seqs")
    parser.add_argument("--tokens-per-second", type=float, default=200.0, help="per sequence")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--sequential-requests", type=int, default=15)
    parser.add_argument("--concurrency", type=int, help="default: from --max-num-seqs")
    args = parser.parse_args()

    capacity = args.seqs * args.tokens_per_second
    concurrency = args.concurrency or concurrency_for([args.seqs])
    server_args = [
        "bench-model",
        "--served-model-name",
        "m",
        "--max-num-seqs",
        str(args.seqs),
        "--sim-tokens-per-second",
        str(args.tokens_per_second),
        "--sim-startup-delay",
        "0",
        "--disable-uvicorn-access-log",
    ]
    with tempfile.TemporaryDirectory() as scratch, SimServer(server_args) as server:
        source, output = Path(scratch) / "in.jsonl", Path(scratch) / "out.jsonl"
        write_requests(source, args.requests, args.max_tokens)
        baseline = sequential_tokens_per_second(
            server.base_url, args.sequential_requests, args.max_tokens
        )
        summary = run_chunk(
            source, output, [server.base_url], options=RunOptions(concurrency=concurrency)
        )

    runner = summary.completion_tokens_per_s
    print(
        f"server capacity      {capacity:10.1f} tok/s  ({args.seqs} seqs x "
        f"{args.tokens_per_second:g} tok/s)"
    )
    print(
        f"runner               {runner:10.1f} tok/s  ({summary.ok} requests, concurrency "
        f"{concurrency}, {summary.requests_per_s:.1f} req/s, p50 {summary.latency_s.p50:.3f} s,"
        f" p99 {summary.latency_s.p99:.3f} s)"
    )
    print(f"sequential baseline  {baseline:10.1f} tok/s  ({args.sequential_requests} requests)")
    print(f"runner / capacity    {runner / capacity:10.1%}  (target >= 90%)")
    print(f"runner / sequential  {runner / baseline:10.1f}x")
    if summary.failed or summary.ok != args.requests:
        raise SystemExit(f"incomplete run: {summary.model_dump_json()}")


if __name__ == "__main__":
    main()
