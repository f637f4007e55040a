"""Cost of checking N servers: ``vec-inf-flows status`` against the anchor ``vec-inf`` 0.9.0.

Runs on the project's local Slurm cluster (``scripts/slurm/up.sh``). For each N (default 1, 10,
50) it launches servers with the simulator engine until N are up or queued (the cluster has
2 nodes x 4 CPUs, so beyond 8 they wait as PENDING, which is still a status to report), then
waits until none of them is still starting, then times, in interleaved rounds:

* ours, CLI:        one ``vec-inf-flows status ID1 ... IDN --json-mode`` process;
* ours, in-process: ``VecInfClient.statuses(ids)`` (and the Slurm commands it ran);
* anchor, per id:   N x ``vec-inf status ID --json-mode``, what a vec-inf user does for N servers;
* anchor, all:      ``vec-inf status --json-mode`` (no id: squeue, then scontrol per job).

Slurm commands per poll are counted in one extra, untimed pass through counting wrappers on
PATH (and cross-checked against ``SlurmBackend.commands_run``). Every job launched here is
cancelled at the end, whatever happens.

    .venv/bin/python bench/status_scaling.py [--sizes 1,10,50] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    Run,
    Samples,
    bench_environment,
    ensure_anchor,
    ensure_ours,
    load_average,
    ms,
    print_table,
    ratio,
    timed_run,
)

from vec_inf_flows.backends.slurm.backend import SlurmBackend
from vec_inf_flows.client import VecInfClient

MODEL = "SmolLM2-135M-Instruct"
SETTLE_SECONDS = 120.0
SLURM_COMMANDS = ("squeue", "scontrol", "sacct", "sbatch", "scancel", "sinfo")
ANCHOR_NOTE = (
    "The anchor reads <model>-vec-inf-<token>.<id>.err, our jobs write <model>.<id>.err, so its\n"
    "per-id answer for our RUNNING jobs is 'LOG FILE NOT FOUND' and it skips the health check\n"
    "(ours does one per READY server): its per-id work here is the same process start, scontrol\n"
    "and log look-up it does for its own jobs, minus the HTTP call. Its 'status of all' keeps\n"
    "only job names ending in '-vec-inf'; ours end in '-vec-inf-<token>', so it finds none and\n"
    "stops after squeue + one scontrol per queued job: for its own jobs it would then run the\n"
    "per-id check for each as well, so that column is a lower bound."
)


@dataclass
class SizeResult:
    """Everything measured for one N."""

    size: int
    states: Counter[str] = field(default_factory=Counter)
    samples: dict[str, Samples] = field(default_factory=dict)
    slurm_calls: dict[str, Counter[str]] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)
    in_process_commands: list[int] = field(default_factory=list)
    anchor_all_found: int = 0


class Bench:
    """One benchmark session: a throwaway state/log tree, the launched jobs, both CLIs."""

    def __init__(self, work: Path, anchor: Path, ours: Path) -> None:
        self.work = work
        self.anchor = str(anchor)
        self.ours = str(ours)
        self.state_dir = work / "home" / ".vec-inf-flows"
        self.log_dir = work / "logs"
        self.env = bench_environment(work / "home", {"VEC_INF_BACKEND": "slurm"})
        self.backend = SlurmBackend()
        self.client = VecInfClient(state_dir=self.state_dir, backend=self.backend)
        self.job_ids: list[str] = []
        self.job_names: set[str] = set()

    # -- launching and cleaning up ---------------------------------------------------------

    def launch_up_to(self, size: int) -> None:
        while len(self.job_ids) < size:
            response = self.client.launch(
                MODEL,
                engine="sim",
                time="00:10:00",
                cpus_per_task=1,
                mem_per_node="512M",
                log_dir=str(self.log_dir),
            )
            self.job_ids.append(response.job_id)
            self.job_names.add(response.job_name)

    def cancel_all(self) -> None:
        """Cancel every job this session made: launched ids, ids in our job index, and any
        live job carrying one of our unique names (a launch cut short between sbatch and
        the return of ``launch`` leaves only its name)."""
        ids = set(self.job_ids)
        index = self.state_dir / ".jobs"
        if index.is_dir():
            ids.update(link.name for link in index.iterdir() if not link.name.startswith("."))
        ids.update(self._live_ids_by_name())
        if ids:
            subprocess.run(["scancel", *sorted(ids)], check=False, capture_output=True)
        left = self._live_ids_by_name()
        note = f", still listed: {' '.join(left)}" if left else ""
        print(f"\ncancelled {len(ids)} job(s) launched by this benchmark{note}")

    def _live_ids_by_name(self) -> list[str]:
        result = subprocess.run(
            ["squeue", "--me", "--noheader", "--format=%i %j", "--states=PENDING,RUNNING"],
            capture_output=True,
            text=True,
            check=False,
        )
        found = []
        for line in result.stdout.splitlines():
            job_id, _, name = line.strip().partition(" ")
            if name in self.job_names:
                found.append(job_id)
        return found

    # -- the four ways to check N servers --------------------------------------------------

    def ours_cli(self, ids: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        run = timed_run([self.ours, "status", *ids, "--json-mode"], env or self.env)
        _require_ok(run, "vec-inf-flows status")
        answers = json.loads(run.stdout)
        count = 1 if isinstance(answers, dict) else len(answers)
        if count != len(ids):
            raise SystemExit(f"vec-inf-flows status answered {count} of {len(ids)} ids")
        return run

    def ours_in_process(self, ids: Sequence[str]) -> tuple[float, int, Counter[str]]:
        before = self.backend.commands_run
        started = time.perf_counter()
        statuses = self.client.statuses(list(ids))
        seconds = time.perf_counter() - started
        states = Counter(status.server_status.value for status in statuses)
        return seconds, self.backend.commands_run - before, states

    def anchor_per_id(self, ids: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        total = 0.0
        for job_id in ids:
            run = timed_run([self.anchor, "status", job_id, "--json-mode"], env or self.env)
            _require_ok(run, f"vec-inf status {job_id}")
            total += run.seconds
        return Run(total, 0, "", "")

    def anchor_all(self, env: Mapping[str, str] | None = None) -> Run:
        run = timed_run([self.anchor, "status", "--json-mode"], env or self.env)
        _require_ok(run, "vec-inf status")
        return run

    # -- counting Slurm commands (untimed) -------------------------------------------------

    def count_calls(self, ids: Sequence[str], result: SizeResult) -> None:
        shims = self.work / "shims"
        log = self.work / "slurm-calls.log"
        _write_counting_shims(shims)
        env = dict(self.env)
        env["PATH"] = f"{shims}:{env.get('PATH', '')}"
        env["BENCH_SLURM_CALL_LOG"] = str(log)
        ways: dict[str, Callable[[], Run]] = {
            "ours CLI": lambda: self.ours_cli(ids, env),
            "anchor per id": lambda: self.anchor_per_id(ids, env),
            "anchor all": lambda: self.anchor_all(env),
        }
        for way, call in ways.items():
            log.write_text("")
            run = call()
            result.slurm_calls[way] = Counter(log.read_text().split())
            if way == "anchor all":
                result.anchor_all_found = _anchor_all_count(run.stdout)
        result.processes = {"ours CLI": 1, "anchor per id": len(ids), "anchor all": 1}


def _write_counting_shims(directory: Path, names: Sequence[str] = SLURM_COMMANDS) -> None:
    """``squeue`` etc. that note their name in ``$BENCH_SLURM_CALL_LOG``, then become the real
    command, so any caller's calls are counted without touching its code."""
    directory.mkdir(exist_ok=True)
    for name in names:
        real = shutil.which(name)
        if real is None:
            continue
        shim = directory / name
        shim.write_text(f'#!/bin/sh\necho {name} >> "$BENCH_SLURM_CALL_LOG"\nexec {real} "$@"\n')
        shim.chmod(0o755)


def _anchor_all_count(stdout: str) -> int:
    try:
        answers = json.loads(stdout)
    except ValueError:
        return 0  # "No running jobs found."
    return len(answers) if isinstance(answers, list) else 0


def _require_ok(run: Run, what: str) -> None:
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise SystemExit(f"`{what}` exited {run.returncode}: {tail}")


def settle(bench: Bench, ids: Sequence[str], limit: float = SETTLE_SECONDS) -> str:
    """Wait until no server is still starting: booting simulators eat the CPU both tools
    are timed on, so measuring in the steady state keeps the rounds comparable."""
    deadline = time.monotonic() + limit
    while True:
        _, _, states = bench.ours_in_process(ids)  # the first call also warms the backend
        if not states.get("LAUNCHING") or time.monotonic() > deadline:
            return ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
        time.sleep(1.0)


def measure(bench: Bench, size: int, rounds: int) -> SizeResult:
    bench.launch_up_to(size)
    ids = bench.job_ids[:size]
    result = SizeResult(size)
    print(f"  settled: {settle(bench, ids)}; load average {load_average()}")
    names = ("ours CLI", "ours in-process", "anchor per id", "anchor all")
    result.samples = {name: Samples() for name in names}
    for index in range(rounds):
        order = list(names) if index % 2 == 0 else list(reversed(names))
        for name in order:
            if name == "ours CLI":
                result.samples[name].add(bench.ours_cli(ids))
            elif name == "ours in-process":
                seconds, commands, states = bench.ours_in_process(ids)
                result.samples[name].add(Run(seconds, 0, "", ""))
                result.in_process_commands.append(commands)
                result.states = states
            elif name == "anchor per id":
                result.samples[name].add(bench.anchor_per_id(ids))
            else:
                result.samples[name].add(bench.anchor_all())
    bench.count_calls(ids, result)
    return result


def report(results: Sequence[SizeResult], rounds: int) -> None:
    print(f"\nwall time per status poll of N servers, median of {rounds} interleaved rounds (ms)")
    rows = []
    for result in results:
        s = result.samples
        ours, per_id, every = s["ours CLI"], s["anchor per id"], s["anchor all"]
        rows.append(
            [
                str(result.size),
                ms(ours.median),
                ms(s["ours in-process"].median),
                ms(per_id.median),
                ms(every.median),
                ratio(ours.median, per_id.median),
                ratio(ours.median, every.median),
            ]
        )
    print_table(
        [
            "N",
            "ours CLI",
            "ours in-proc",
            "anchor N x status ID",
            "anchor status (all)",
            "ours/anchor per-id",
            "ours/anchor all",
        ],
        rows,
    )

    print("\ncalls per poll (Slurm commands counted on PATH; processes = Python CLI starts)")
    call_rows = []
    for result in results:
        calls = result.slurm_calls
        in_process = sorted(set(result.in_process_commands))
        call_rows.append(
            [
                str(result.size),
                _calls(calls["ours CLI"], result.processes["ours CLI"]),
                "/".join(str(count) for count in in_process),
                _calls(calls["anchor per id"], result.processes["anchor per id"]),
                _calls(calls["anchor all"], result.processes["anchor all"]),
                str(result.anchor_all_found),
            ]
        )
    print_table(
        [
            "N",
            "ours CLI",
            "ours in-proc (commands_run)",
            "anchor N x status ID",
            "anchor status (all)",
            "anchor all: jobs found",
        ],
        call_rows,
    )

    print("\nserver states seen by ours (last round):")
    for result in results:
        states = ", ".join(f"{state} {count}" for state, count in sorted(result.states.items()))
        print(f"  N={result.size}: {states}")
    print("\n" + ANCHOR_NOTE)


def _calls(calls: Counter[str], processes: int) -> str:
    slurm = ", ".join(f"{count} {name}" for name, count in sorted(calls.items()))
    return f"{processes} proc; {slurm or 'no Slurm'}"


def cluster_summary() -> str:
    result = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%N %c %t"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            "The local Slurm cluster does not answer (sinfo failed): start it with "
            "scripts/slurm/up.sh"
        )
    nodes = [line.split() for line in result.stdout.splitlines() if line.strip()]
    cpus = sum(int(cpu) for _, cpu, _ in nodes)
    described = ", ".join(f"{name} {cpu} CPUs {state}" for name, cpu, state in nodes)
    return f"{described}: at most {cpus} one-CPU servers run at once, the rest wait PENDING"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="comma-separated numbers of servers")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per size")
    parser.add_argument("--json", action="store_true", help="also print the raw samples as JSON")
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    if not sizes or sizes[0] < 1:
        raise SystemExit("--sizes needs positive numbers, e.g. 1,10,50")

    print(f"cluster: {cluster_summary()}")
    # A plain `kill` must still reach the finally below that cancels the jobs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    anchor, ours = ensure_anchor(), ensure_ours()
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-status-") as work:
        bench = Bench(Path(work), anchor, ours)
        try:
            for size in sizes:
                print(f"N={size}: launching up to {size} servers; load average {load_average()}")
                results.append(measure(bench, size, args.rounds))
        finally:
            bench.cancel_all()
    report(results, args.rounds)
    if args.json:
        raw = {
            str(result.size): {name: s.values for name, s in result.samples.items()}
            for result in results
        }
        print(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
