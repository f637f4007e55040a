"""The real CPU vLLM under the local Slurm cluster: where launch-to-READY time goes, and what the
workload runner costs against a raw async client.

Launch to READY is split into: queue (submit to RUNNING in squeue), engine start-up (RUNNING to
vLLM's "Application startup complete." line) and detection (that line to ``status`` saying READY,
at the flow's poll interval). Each boundary is watched by its own thread at 50 ms.

Throughput: the same chat requests through the workload runner (retries, result store, replica
pool) and through a bare ``httpx.AsyncClient`` with a semaphore at the same concurrency, run
alternately against the same server; the ratio is runner / raw.

    .venv/bin/python bench/real_engine.py [--launches 2] [--requests 32] [--concurrency 4]

Needs ``vec-inf-flows engine setup cpu`` (done on first use) and ``scripts/slurm/up.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.engines.cpu import CpuEngine
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.workload import RunOptions, run_chunk

MODEL = "SmolLM2-135M-Instruct"
READY_LINE = "INFO:     Application startup complete."


class Stopwatch:
    """First moment (monotonic, relative to start) each watched condition became true."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()

    def watch(self, name: str, probe: object) -> threading.Thread:
        def loop() -> None:
            while not self._stop.is_set() and name not in self.marks:
                try:
                    if probe():  # type: ignore[operator]
                        self.marks[name] = time.monotonic() - self.start
                        return
                except Exception:
                    pass
                time.sleep(0.05)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def running_in_squeue(job_id: str) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%T", f"--jobs={job_id}"], capture_output=True, text=True
    ).stdout
    return "RUNNING" in out


def time_one_launch(client: VecInfClient, poll_interval: float) -> dict[str, float]:
    watch = Stopwatch()
    launched = client.launch(MODEL, time="00:20:00")
    submitted = time.monotonic() - watch.start
    paths = JobPaths(Path(launched.job_dir), Path(launched.job_dir).name)
    threads = [
        watch.watch("running", lambda: running_in_squeue(launched.job_id)),
        watch.watch("ready_line", lambda: READY_LINE in paths.err.read_text(errors="replace")),
    ]
    try:
        ready = client.wait_until_ready(launched.job_id, timeout=600, poll_interval=poll_interval)
        assert ready.server_status is ServerStatus.READY
        watch.marks["status_ready"] = time.monotonic() - watch.start
        for thread in threads:
            thread.join(timeout=5)
        marks = watch.marks
        return {
            "submit": submitted,
            "queue": marks["running"],
            "engine_startup": marks["ready_line"] - marks["running"],
            "detection": marks["status_ready"] - marks["ready_line"],
            "total": marks["status_ready"],
        }
    finally:
        watch.stop()
        client.shutdown(launched.job_id)


def write_requests(path: Path, count: int, max_tokens: int) -> list[dict[str, object]]:
    rows = [
        {
            "id": f"q{n}",
            "messages": [{"role": "user", "content": f"Write a short note about topic {n}."}],
            "max_tokens": max_tokens,
            "ignore_eos": True,
        }
        for n in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


async def raw_client(
    base_url: str, rows: list[dict[str, object]], concurrency: int
) -> tuple[int, float]:
    gate = asyncio.Semaphore(concurrency)
    tokens = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:

        async def one(row: dict[str, object]) -> None:
            nonlocal tokens
            body = {key: value for key, value in row.items() if key != "id"}
            async with gate:
                reply = await http.post(
                    f"{base_url}/chat/completions", json={"model": MODEL, **body}
                )
            reply.raise_for_status()
            tokens += reply.json()["usage"]["completion_tokens"]

        await asyncio.gather(*(one(row) for row in rows))
    return tokens, time.perf_counter() - started


def runner(base_url: str, source: Path, output: Path, concurrency: int) -> tuple[int, float]:
    output.unlink(missing_ok=True)
    started = time.perf_counter()
    summary = run_chunk(source, output, [base_url], options=RunOptions(concurrency=concurrency))
    return summary.completion_tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=2)
    parser.add_argument("--poll-interval", type=float, default=2.0, help="as the flows poll")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    CpuEngine.default().setup()
    with tempfile.TemporaryDirectory() as scratch:
        client = VecInfClient(state_dir=Path(scratch) / "home")
        launches = [time_one_launch(client, args.poll_interval) for _ in range(args.launches)]
        print("launch to READY (s), SmolLM2-135M-Instruct on the real CPU vLLM, local Slurm:")
        print(f"{'':>4} {'submit':>8} {'queue':>8} {'engine':>8} {'detect':>8} {'total':>8}")
        for n, t in enumerate(launches, 1):
            print(
                f"{n:>4} {t['submit']:8.2f} {t['queue']:8.2f} {t['engine_startup']:8.2f}"
                f" {t['detection']:8.2f} {t['total']:8.2f}"
            )

        launched = client.launch(MODEL, time="00:20:00")
        try:
            base_url = client.wait_until_ready(launched.job_id, timeout=600).base_url
            assert base_url is not None
            source = Path(scratch) / "requests.jsonl"
            rows = write_requests(source, args.requests, args.max_tokens)
            raw_rates, runner_rates = [], []
            for _ in range(args.rounds):  # alternate, so drift hits both alike
                tokens, seconds = asyncio.run(raw_client(base_url, rows, args.concurrency))
                raw_rates.append(tokens / seconds)
                tokens, seconds = runner(
                    base_url, source, Path(scratch) / "out.jsonl", args.concurrency
                )
                runner_rates.append(tokens / seconds)
        finally:
            client.shutdown(launched.job_id)
        raw, ours = statistics.median(raw_rates), statistics.median(runner_rates)
        print(
            f"\nthroughput at concurrency {args.concurrency}, {args.requests} requests x "
            f"{args.max_tokens} tokens, {args.rounds} alternating rounds (median):"
        )
        print(f"  raw async client : {raw:7.1f} tokens/s  {[round(r, 1) for r in raw_rates]}")
        print(f"  workload runner  : {ours:7.1f} tokens/s  {[round(r, 1) for r in runner_rates]}")
        print(f"  ratio runner/raw : {ours / raw:.3f}")


if __name__ == "__main__":
    main()
