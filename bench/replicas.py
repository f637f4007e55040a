"""Replicas on the local Slurm cluster: scaling, the router's cost, and time to first result.

Simulator replicas of known capacity (``--max-num-seqs`` sequences at ``--tokens-per-second``
each) run as Slurm jobs of one replica group, with its vllm-router job. In one run:

1. scaling: the same dataset through 1, 2 and 4 READY replicas (the workload runner talking to
   them directly); target: 4 replicas >= 3.6x the tokens/s of one (90% of linear);
2. router: the same dataset through the group's one endpoint and directly to the 4 replicas,
   alternated, at the same concurrency; target: router >= 95% of direct;
3. time to first result: a new group of 4 replicas needing 2 GPUs each while another job holds
   2 of node1's 4 GPUs, so one replica stays PENDING; work starts on the first READY replica
   and the run ends without the PENDING one; target: first result follows the first READY;
4. elastic: a dataset with a long tail (the short requests, then four long generations of
   different lengths) on 4 fixed replicas and on an elastic group of at most 4, alternated:
   replica-seconds held (Slurm's elapsed time of every replica job, from sacct; GPU-seconds
   when each replica holds one GPU) and wall time.

The capacity is kept low on purpose (default 4 x 8 x 25 = 800 tokens/s for 4 replicas, 32
requests/s of 25 tokens): this machine has 2 cores shared by the simulators, the router and the
client, and a benchmark of replicas must measure the replicas, not the client's CPU. 512
requests make 16 batches per replica at 4 replicas, so the last, partly filled batch (a
discrete effect of the simulator's strict batches) costs little.

    .venv/bin/python bench/replicas.py [--seqs 8] [--tokens-per-second 25] [--requests 512]
        [--parts scaling,ttfr,elastic]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.replicas import (
    EventKind,
    GroupWatcher,
    ReplicaEvent,
    ReplicaGroup,
    ReplicaPlan,
    RouterSettings,
)
from vec_inf_flows.replicas.elastic import ElasticPolicy
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.replicas.status import group_status, wait_until_usable
from vec_inf_flows.workload import Replica, RunOptions, concurrency_for, run_chunk
from vec_inf_flows.workload.stats import ChunkSummary

MODEL = "SmolLM2-135M-Instruct"


def write_requests(path: Path, count: int, max_tokens: int) -> Path:
    with path.open("w") as handle:
        for n in range(count):
            row = {
                "id": f"q{n}",
                "messages": [{"role": "user", "content": f"Tell me about item {n}."}],
                "max_tokens": max_tokens,
                "ignore_eos": True,  # every request decodes max_tokens: a known amount of work
            }
            handle.write(json.dumps(row) + "\n")
    return path


def options(args: argparse.Namespace, log_dir: Path, **extra: Any) -> LaunchOptions:
    engine_args = (
        f"--max-num-seqs={args.seqs},--sim-tokens-per-second={args.tokens_per_second},"
        "--sim-startup-delay=1,--disable-uvicorn-access-log"
    )
    base = {
        "engine": "sim",
        "cpus_per_task": 1,
        "mem_per_node": "1G",
        "time": "00:30:00",
        "log_dir": str(log_dir),
        "vllm_args": engine_args,
    }
    return LaunchOptions.model_validate({**base, **extra})


def all_ready(client: VecInfClient, group: ReplicaGroup, timeout: float = 300) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = client.statuses(group.replica_ids())
        if all(s.server_status is ServerStatus.READY for s in statuses):
            return [s.base_url for s in statuses if s.base_url]
        if any(s.terminal for s in statuses):
            raise SystemExit(f"a replica failed: {[s.model_dump() for s in statuses]}")
        time.sleep(1)
    raise SystemExit("replicas not READY in time")


def timed(run: Callable[[], ChunkSummary], label: str, requests: int) -> ChunkSummary:
    summary = run()
    if summary.ok != requests or summary.failed:
        raise SystemExit(f"{label}: incomplete run: {summary.model_dump_json()}")
    print(
        f"  {label:<28} {summary.completion_tokens_per_s:8.1f} tok/s  "
        f"({summary.elapsed_s:6.2f} s, p50 {summary.latency_s.p50:.2f} s)",
        flush=True,
    )
    return summary


def scaling_and_router(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    client = VecInfClient()
    plan = ReplicaPlan(
        model_name=MODEL,
        replicas=4,
        options=options(args, scratch / "logs"),
        router=RouterSettings(place="job"),
    )
    source = write_requests(scratch / "in.jsonl", args.requests, args.max_tokens)
    group = ReplicaGroup.launch(client, plan)
    print(f"group {group.group_id}: jobs {', '.join(m.job_id for m in group.record.members)}")
    try:
        urls = all_ready(client, group)
        endpoint = wait_until_usable(group, timeout=120).endpoint
        while len(group_status(group).endpoint_workers or []) < 4:
            time.sleep(0.5)
        assert endpoint is not None
        replicas = [Replica(url, args.seqs) for url in urls]
        per_replica = concurrency_for([args.seqs])
        results: dict[str, list[float]] = {}
        counter = iter(range(1000))

        def run(targets: list[Replica | str], concurrency: int) -> ChunkSummary:
            output = scratch / f"out-{next(counter)}.jsonl"
            opts = RunOptions(concurrency=concurrency)
            return run_chunk(source, output, targets, options=opts)

        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}: scaling (runner talks to the replicas directly)")
            for n in (1, 2, 4):
                summary = timed(
                    lambda n=n: run(list(replicas[:n]), per_replica * n),  # type: ignore[misc]
                    f"{n} replica{'s' if n > 1 else ''}",
                    args.requests,
                )
                results.setdefault(f"direct-{n}", []).append(summary.completion_tokens_per_s)
            print(f"round {round_number}: one endpoint (vllm-router job) vs direct, 4 replicas")
            for label, targets in (("router", [endpoint]), ("direct", list(replicas))):
                summary = timed(
                    lambda t=targets: run(t, per_replica * 4),  # type: ignore[misc]
                    f"{label} (concurrency {per_replica * 4})",
                    args.requests,
                )
                results.setdefault(f"{label}-4-paired", []).append(summary.completion_tokens_per_s)
    finally:
        group.shutdown()
    return {key: statistics.median(values) for key, values in results.items()}


def first_result(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Four replicas of 2 GPUs each, with 2 of the cluster's 8 GPUs held by another job."""
    blocker = subprocess.run(
        [
            *("sbatch", "--parsable", "--job-name=bench-replicas-gpu-holder"),
            *("--nodelist=node1", "--gres=gpu:2", "--cpus-per-task=1", "--mem=100M"),
            *("--time=00:20:00", f"--output={scratch}/holder.out", "--wrap=sleep 1200"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    client = VecInfClient()
    events: list[tuple[float, ReplicaEvent]] = []
    first: list[float] = []
    try:
        while "RUNNING" not in _squeue_state(blocker):
            time.sleep(0.5)
        plan = ReplicaPlan(
            model_name=MODEL,
            replicas=4,
            relaunches=0,
            options=options(args, scratch / "logs-ttfr", gpus_per_node=2),
        )
        source = write_requests(scratch / "ttfr.jsonl", args.requests, args.max_tokens)
        started = time.monotonic()
        group = ReplicaGroup.launch(client, plan)
        watcher = GroupWatcher(group, lambda e: events.append((time.monotonic() - started, e)))
        try:
            summary = run_chunk(
                source,
                scratch / "ttfr.out.jsonl",
                [],
                options=RunOptions(),
                membership=watcher.changes(interval=0.5, ready_timeout=1800),
                on_progress=lambda _: first or first.append(time.monotonic() - started),
            )
            finished = time.monotonic() - started
            final = client.statuses(group.replica_ids())
        finally:
            watcher.stop()
            group.shutdown()
    finally:
        subprocess.run(["scancel", blocker], capture_output=True, check=False)
    ready = sorted(t for t, e in events if e.kind is EventKind.READY)
    pending = [s for s in final if s.server_status is ServerStatus.PENDING]
    print(
        f"  first READY {ready[0]:.1f} s, first result {first[0]:.1f} s, run done "
        f"{finished:.1f} s ({summary.ok} ok); READY at {', '.join(f'{t:.1f}' for t in ready)} s;"
        f" still PENDING at the end: {[(s.job_id, s.pending_reason) for s in pending]}"
    )
    return {
        "first_ready_s": ready[0],
        "first_result_s": first[0],
        "done_s": finished,
        "ready_s": ready,
        "pending_at_end": len(pending),
        "ok": summary.ok,
    }


TAIL_TOKENS = (100, 200, 300, 400)  # the long generations at the end of the dataset


def write_tailed(path: Path, count: int, max_tokens: int) -> Path:
    write_requests(path, count, max_tokens)
    with path.open("a") as handle:
        for n, tokens in enumerate(TAIL_TOKENS):
            row = {
                "id": f"tail{n}",
                "messages": [{"role": "user", "content": f"Write at length about topic {n}."}],
                "max_tokens": tokens,
                "ignore_eos": True,
            }
            handle.write(json.dumps(row) + "\n")
    return path


def held_seconds(job_ids: list[str]) -> int:
    """Seconds the jobs ran, summed, as Slurm accounted them (sacct's ElapsedRaw)."""
    for _ in range(30):  # accounting catches up a few seconds after the last job ends
        rows = subprocess.run(
            ["sacct", "-X", "-P", "-n", "-j", ",".join(job_ids), "-o", "JobID,ElapsedRaw,End"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        fields = [row.split("|") for row in rows]
        if len(fields) == len(job_ids) and all(end != "Unknown" for _, _, end in fields):
            return sum(int(elapsed) for _, elapsed, _ in fields)
        time.sleep(1)
    raise SystemExit(f"sacct has no end time for all of {job_ids}")


def tail_run(args: argparse.Namespace, scratch: Path, elastic: bool, n: int) -> dict[str, float]:
    """The tailed dataset on 4 fixed replicas or an elastic group of at most 4."""
    client = VecInfClient()
    source = write_tailed(scratch / "tail.jsonl", args.requests, args.max_tokens)
    total = args.requests + len(TAIL_TOKENS)
    plan = ReplicaPlan(model_name=MODEL, replicas=4, options=options(args, scratch / "logs-tail"))
    policy = ElasticPolicy() if elastic else None
    started = time.monotonic()
    group = ReplicaGroup.launch(client, plan, first=1 if elastic else None)
    serving = ServingGroup(group, elastic=policy)
    key = str(source)
    serving.expect(key, total)
    try:
        summary = run_chunk(
            source,
            scratch / f"tail-{'elastic' if elastic else 'fixed'}-{n}.jsonl",
            [],
            options=RunOptions(),
            membership=serving.membership(interval=0.5),
            on_progress=lambda p: serving.note_progress(key, p.done, total),
        )
        wall = time.monotonic() - started
    finally:
        serving.shutdown()
    if summary.ok != total:
        raise SystemExit(f"tail run incomplete: {summary.model_dump_json()}")
    held = held_seconds(group.replica_ids())
    label = "elastic (at most 4)" if elastic else "fixed 4"
    print(
        f"  {label:<20} wall {wall:6.1f} s, replica-seconds held {held:5d}, "
        f"jobs {len(group.replica_ids())}, peak {serving.watcher.peak_serving}",
        flush=True,
    )
    return {"wall_s": wall, "held_s": held}


def elastic_tail(args: argparse.Namespace, scratch: Path) -> dict[str, float]:
    results: dict[str, list[float]] = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}: long tail, fixed vs elastic")
        for elastic in (False, True) if round_number % 2 else (True, False):
            figures = tail_run(args, scratch, elastic, round_number)
            name = "elastic" if elastic else "fixed"
            for key, value in figures.items():
                results.setdefault(f"{name}-{key}", []).append(value)
    return {key: statistics.median(values) for key, values in results.items()}


def _squeue_state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", type=int, default=8, help="each replica's --max-num-seqs")
    parser.add_argument("--tokens-per-second", type=float, default=25.0, help="per sequence")
    parser.add_argument("--max-tokens", type=int, default=25)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--parts", default="scaling,ttfr,elastic", help="which parts to run (comma-separated)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    capacity = args.seqs * args.tokens_per_second
    print(
        f"replica capacity: {args.seqs} seqs x {args.tokens_per_second:g} tok/s = "
        f"{capacity:g} tok/s; {args.requests} requests x {args.max_tokens} tokens"
    )
    figures: dict[str, Any] = {}
    ttfr: dict[str, Any] = {}
    tail: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as name:
        scratch = Path(name)
        if "scaling" in parts:
            figures = scaling_and_router(args, scratch)
        if "ttfr" in parts:
            print("time to first result (one replica held PENDING by a GPU it cannot get)")
            ttfr = first_result(args, scratch)
        if "elastic" in parts:
            tail = elastic_tail(args, scratch)
    print()
    if figures:
        one, two, four = (figures[f"direct-{n}"] for n in (1, 2, 4))
        router, direct = figures["router-4-paired"], figures["direct-4-paired"]
        print(f"1 replica                 {one:8.1f} tok/s  ({one / capacity:.0%} of capacity)")
        print(f"2 replicas                {two:8.1f} tok/s  {two / one:5.2f}x one")
        print(f"4 replicas                {four:8.1f} tok/s  {four / one:5.2f}x one  (>= 3.6x)")
        print(f"router / direct (4)       {router / direct:8.1%}  (target >= 95%)")
    if ttfr:
        print(
            f"first result - first READY {ttfr['first_result_s'] - ttfr['first_ready_s']:7.1f} s;"
            f" {ttfr['pending_at_end']} replica(s) still PENDING when the run ended"
        )
    if tail:
        held = tail["elastic-held_s"] / tail["fixed-held_s"]
        wall = tail["elastic-wall_s"] / tail["fixed-wall_s"]
        print(
            f"elastic / fixed 4          replica-seconds {held:.2f}x "
            f"({tail['elastic-held_s']:.0f} vs {tail['fixed-held_s']:.0f}), wall {wall:.2f}x"
        )
    if args.json:
        print(json.dumps({"capacity": capacity, **figures, "ttfr": ttfr, "tail": tail}))


if __name__ == "__main__":
    main()
