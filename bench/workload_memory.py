"""Peak memory of the workload runner for 100 000 requests (target: <= 300 MB).

The runner runs as its own process (``python -m vec_inf_flows.workload run``) and its peak
resident set comes from the kernel's accounting of that child (``wait4`` -> ``ru_maxrss``). The
baseline is the same runner on 1 000 requests, measured in the same run: memory that grows
with the input would show up as a ratio well above 1.

    .venv/bin/python bench/workload_memory.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vec_inf_flows.sim.process import SimServer


def write_requests(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for n in range(count):
            handle.write(json.dumps({"id": f"q{n}", "prompt": f"item {n}", "max_tokens": 1}) + "\n")


def run_runner(
    base_url: str, source: Path, output: Path, concurrency: int
) -> tuple[float, dict[str, Any]]:
    """Peak RSS in MB of one runner process, and its summary."""
    command = [
        sys.executable,
        "-m",
        "vec_inf_flows.workload",
        "run",
        "--base-url",
        base_url,
        "--input",
        str(source),
        "--output",
        str(output),
        "--model",
        "m",
        "--concurrency",
        str(concurrency),
    ]
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(command, stdout=stdout)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"runner failed with exit code {process.returncode}")
        stdout.seek(0)
        summary = json.loads(stdout.read())
    return usage.ru_maxrss / 1024, summary  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--baseline-requests", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    server_args = [
        "bench-model",
        "--served-model-name",
        "m",
        "--max-num-seqs",
        "256",
        "--sim-tokens-per-second",
        "100000",
        "--sim-ttft",
        "0",
        "--sim-startup-delay",
        "0",
        "--disable-log-requests",
        "--disable-uvicorn-access-log",
    ]
    with tempfile.TemporaryDirectory() as scratch, SimServer(server_args) as server:
        results = {}
        for count in (args.baseline_requests, args.requests):
            source = Path(scratch) / f"in-{count}.jsonl"
            output = Path(scratch) / f"out-{count}.jsonl"
            write_requests(source, count)
            started = time.perf_counter()
            peak, summary = run_runner(server.base_url, source, output, args.concurrency)
            lines = output.read_bytes().count(b"\n")
            if summary["ok"] != count or lines != count:
                raise SystemExit(f"incomplete run for {count}: {summary}")
            results[count] = (peak, time.perf_counter() - started, summary)

    base_peak, _, _ = results[args.baseline_requests]
    peak, wall, summary = results[args.requests]
    print(f"runner peak RSS, {args.baseline_requests:>7} requests  {base_peak:8.1f} MB")
    print(f"runner peak RSS, {args.requests:>7} requests  {peak:8.1f} MB  (target <= 300 MB)")
    print(f"ratio                            {peak / base_peak:8.2f}x")
    print(
        f"{args.requests} requests in {wall:.1f} s ({summary['requests_per_s']:.0f} req/s, "
        f"concurrency {args.concurrency})"
    )


if __name__ == "__main__":
    main()
