"""What a lapsed owner costs: seconds from SIGKILL of the owner to the end of its servers' jobs.

Runs on the project's local Slurm cluster (``scripts/slurm/up.sh``) with simulator servers
(1 CPU, 512M each). For each N (default 1 and 20) one owner process launches N servers through
the Python API with a lease (``LeasePolicy(renew_every, lapse_after)``), waits until all are
READY, and is then killed with SIGKILL: nobody shuts anything down, no reaper runs. The script
polls squeue once a second and records when each job leaves the live states (PENDING, RUNNING,
COMPLETING ...).

Baseline: the anchor (vec-inf) has no lease, so a server whose owner is gone lives to its Slurm
time limit. That figure is read from the catalog (the time limit of every model), not run: a
job that sits for 8 h proves nothing a clock cannot.

    .venv/bin/python bench/lease_cost.py [--sizes 1,20] [--renew 15] [--lapse 60] [--json]

Every job launched here is cancelled at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import bench_environment, load_average, print_table

MODEL = "SmolLM2-135M-Instruct"
SERVER = {"engine": "sim", "time": "00:30:00", "cpus_per_task": 1, "mem_per_node": "512M"}
ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}

OWNER = """
import json, sys, time
from vec_inf_flows import LeasePolicy, VecInfClient
count, renew, lapse, options = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
client = VecInfClient()
lease = LeasePolicy(renew_every=renew, lapse_after=lapse)
ids = [client.launch(sys.argv[5], lease=lease, **json.loads(options)).job_id for _ in range(count)]
print(json.dumps(ids), flush=True)
for job_id in ids:
    client.wait_until_ready(job_id, timeout=900, poll_interval=1)
print("READY", flush=True)
time.sleep(24 * 3600)
"""


@dataclass
class SizeResult:
    size: int
    seconds_to_end: list[float]  # per job, from the owner's SIGKILL
    final_states: Counter[str]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_to_end)

    @property
    def worst(self) -> float:
        return max(self.seconds_to_end)


def live_states(ids: Sequence[str]) -> dict[str, str]:
    """squeue's state for each id it still lists (ended jobs linger for MinJobAge)."""
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %T", f"--jobs={','.join(ids)}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    states = {}
    for line in out.splitlines():
        job_id, state = line.split()
        states[job_id] = state
    return states


def final_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.split()
    return out[0] if out else "unknown"


def measure(size: int, renew: float, lapse: float, env: dict[str, str]) -> SizeResult:
    arguments = [str(size), str(renew), str(lapse), json.dumps(SERVER), MODEL]
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, *arguments],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    ids: list[str] = []
    try:
        assert owner.stdout is not None
        ids = json.loads(owner.stdout.readline())
        if owner.stdout.readline().strip() != "READY":
            raise SystemExit(f"the owner failed before all {size} servers were READY")
        print(
            f"N={size}: {size} servers READY (jobs {ids[0]}..{ids[-1]}); SIGKILL the owner",
            flush=True,
        )
        owner.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        owner.wait()
        ended: dict[str, float] = {}
        while len(ended) < len(ids):
            states = live_states(ids)
            now = time.monotonic() - killed
            for job_id in ids:
                if job_id not in ended and states.get(job_id, "") not in ALIVE:
                    ended[job_id] = now
            if now > lapse + 600:
                raise SystemExit(f"jobs still alive {now:.0f} s after the owner died")
            time.sleep(1.0)
        return SizeResult(
            size, [ended[job_id] for job_id in ids], Counter(final_state(i) for i in ids)
        )
    finally:
        owner.kill()
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=60, check=False)


def anchor_time_limits() -> Counter[str]:
    """The catalog's time limit per model: how long the anchor's orphan lives."""
    from vec_inf_flows.catalog.listing import list_models, model_config_dump

    return Counter(str(model_config_dump(info.name).get("time")) for info in list_models())


def seconds(limit: str) -> float:
    days, _, clock = limit.rpartition("-")
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return (int(days) if days else 0) * 86400 + hours * 3600 + minutes * 60 + secs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,20")
    parser.add_argument("--renew", type=float, default=15.0, help="lease renewal period (s)")
    parser.add_argument("--lapse", type=float, default=60.0, help="lease lapse (s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    limits = anchor_time_limits()
    common, models = limits.most_common(1)[0]
    anchor = seconds(common)
    print(
        f"load average {load_average()}; lease renewed every {args.renew:g} s, lapses after "
        f"{args.lapse:g} s; anchor: orphans live to the time limit, {common} for {models} of "
        f"{sum(limits.values())} catalog models"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="lease-cost-") as scratch:
        home = Path(scratch)
        env = bench_environment(home, {"VEC_INF_LOG_DIR": str(home / "logs")})
        for size in sizes:
            results.append(measure(size, args.renew, args.lapse, env))
    rows = [
        [
            str(result.size),
            f"{result.median:.1f}",
            f"{result.worst:.1f}",
            f"{anchor:.0f}",
            f"{result.median / anchor:.4f}",
            f"{result.size * (anchor - result.median) / 3600:.1f}",
            ", ".join(f"{state} x{count}" for state, count in result.final_states.items()),
        ]
        for result in results
    ]
    print_table(
        [
            "N",
            "median s to end",
            "worst s",
            "anchor s",
            "ours/anchor",
            "server-hours saved",
            "Slurm end state",
        ],
        rows,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "renew": args.renew,
                    "lapse": args.lapse,
                    "anchor_seconds": anchor,
                    "anchor_time_limits": dict(limits),
                    "results": [
                        {"size": r.size, "seconds_to_end": r.seconds_to_end} for r in results
                    ],
                }
            )
        )


if __name__ == "__main__":
    main()
