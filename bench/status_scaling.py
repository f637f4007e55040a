"""Cost of checking N servers: ``vec-inf-flows status`` against the anchor ``vec-inf`` 0.9.0.

Runs on the project's local Slurm cluster (``scripts/slurm/up.sh``; 2 nodes x 16 CPUs / 64 GB,
so 32 one-CPU servers run at once and the rest wait PENDING, which is still a status to
report). For each N (default 1, 10, 50) each tool launches N simulator servers of its own:
ours through the client, the anchor through its own ``vec-inf launch`` (its job runs
``vllm serve`` from a venv whose ``vllm`` starts this package's simulator; its job script
needs ``nc``). Once none of them is still starting, interleaved rounds time:

* single id:        ``vec-inf-flows status ID`` and ``vec-inf status ID`` (tables), each on
                    a server it launched itself;
* N ids:            one ``vec-inf-flows status ID1 ... IDN --json-mode`` process, against
                    N x ``vec-inf status ID --json-mode`` (vec-inf takes one id per call);
* all:              ``vec-inf-flows status --json-mode`` and ``vec-inf status --json-mode``
                    (ours lists both tools' servers, 2N, since it reads vec-inf's jobs too;
                    the anchor lists its N);
* ours in-process:  ``VecInfClient.statuses(ids)`` (and the Slurm commands it ran).

Slurm commands per poll are counted in one extra, untimed pass through counting wrappers on
PATH. Every job launched here is cancelled at the end, whatever happens.

    .venv/bin/python bench/status_scaling.py [--sizes 1,10,50] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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

from _anchor_jobs import MODEL, anchor_kit
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

SETTLE_SECONDS = 180.0
SLURM_COMMANDS = ("squeue", "scontrol", "sacct", "sbatch", "scancel", "sinfo")
WAYS = (
    "ours ID",
    "anchor ID",
    "ours N ids",
    "anchor N x ID",
    "ours all",
    "anchor all",
    "ours in-proc",
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
    """One benchmark session: a throwaway state/log tree, both tools' jobs, both CLIs."""

    def __init__(self, work: Path, anchor: Path, ours: Path) -> None:
        self.work = work
        self.anchor = str(anchor)
        self.ours = str(ours)
        self.state_dir = work / "home" / ".vec-inf-flows"
        self.log_dir = work / "logs"
        self.env = bench_environment(work / "home", {"VEC_INF_BACKEND": "slurm"})
        self.backend = SlurmBackend()
        self.client = VecInfClient(state_dir=self.state_dir, backend=self.backend)
        self.job_ids: list[str] = []  # ours
        self.anchor_ids: list[str] = []  # the anchor's
        self.job_names: set[str] = set()
        self.anchor_args = self._anchor_setup()

    def _anchor_setup(self) -> list[str]:
        kit = anchor_kit(self.work, self.work / "anchor-logs")
        self.env["VEC_INF_ACCOUNT"] = os.environ.get("VEC_INF_ACCOUNT") or _default_account()
        self.env["VEC_INF_WORK_DIR"] = str(kit.work_dir)
        return kit.args

    # -- launching and cleaning up ---------------------------------------------------------

    def launch_up_to(self, size: int) -> None:
        while len(self.job_ids) < size:
            response = self.client.launch(
                MODEL,
                engine="sim",
                time="00:15:00",
                cpus_per_task=1,
                mem_per_node="1G",
                log_dir=str(self.log_dir),
            )
            self.job_ids.append(response.job_id)
            self.job_names.add(response.job_name)
        while len(self.anchor_ids) < size:
            run = timed_run(
                [self.anchor, "launch", MODEL, *self.anchor_args, "--json-mode"], self.env
            )
            _require_ok(run, "vec-inf launch")
            self.anchor_ids.append(str(json.loads(run.stdout)["slurm_job_id"]))

    def cancel_all(self) -> None:
        """Cancel every job this session made: launched ids, ids in our job index, and any
        live job carrying one of our unique names (a launch cut short between sbatch and
        the return of ``launch`` leaves only its name)."""
        ids = set(self.job_ids) | set(self.anchor_ids)
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

    # -- the ways to check servers ---------------------------------------------------------

    def ours_cli(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        run = timed_run([self.ours, "status", *argv], env or self.env)
        _require_ok(run, "vec-inf-flows status")
        return run

    def ours_ids(self, ids: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        run = self.ours_cli([*ids, "--json-mode"], env)
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

    def anchor_cli(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        run = timed_run([self.anchor, "status", *argv], env or self.env)
        _require_ok(run, "vec-inf status")
        return run

    def anchor_per_id(self, ids: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
        total = 0.0
        for job_id in ids:
            total += self.anchor_cli([job_id, "--json-mode"], env).seconds
        return Run(total, 0, "", "")

    # -- counting Slurm commands (untimed) -------------------------------------------------

    def count_calls(self, size: int, result: SizeResult) -> None:
        shims = self.work / "shims"
        log = self.work / "slurm-calls.log"
        _write_counting_shims(shims)
        env = dict(self.env)
        env["PATH"] = f"{shims}:{env.get('PATH', '')}"
        env["BENCH_SLURM_CALL_LOG"] = str(log)
        ours, theirs = self.job_ids[:size], self.anchor_ids[:size]
        ways: dict[str, Callable[[], Run]] = {
            "ours N ids": lambda: self.ours_ids(ours, env),
            "anchor N x ID": lambda: self.anchor_per_id(theirs, env),
            "ours all": lambda: self.ours_cli(["--json-mode"], env),
            "anchor all": lambda: self.anchor_cli(["--json-mode"], env),
        }
        for way, call in ways.items():
            log.write_text("")
            run = call()
            result.slurm_calls[way] = Counter(log.read_text().split())
            if way == "anchor all":
                result.anchor_all_found = _anchor_all_count(run.stdout)
        result.processes = {"ours N ids": 1, "anchor N x ID": size, "ours all": 1, "anchor all": 1}


def _default_account() -> str:
    """The user's default Slurm account (vec-inf requires one)."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
    result = subprocess.run(
        ["sacctmgr", "--noheader", "--parsable2", "show", "user", user, "format=DefaultAccount"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip().splitlines()[0] if result.stdout.strip() else "root"


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


def settle(bench: Bench, size: int, limit: float = SETTLE_SECONDS) -> str:
    """Wait until no server (of either tool) is still starting: booting simulators eat the
    CPU both tools are timed on, so measuring in the steady state keeps rounds comparable."""
    deadline = time.monotonic() + limit
    ids = [*bench.job_ids[:size], *bench.anchor_ids[:size]]
    while True:
        _, _, states = bench.ours_in_process(ids)  # reads vec-inf's jobs too
        if not states.get("LAUNCHING") or time.monotonic() > deadline:
            return ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
        time.sleep(1.0)


def measure(bench: Bench, size: int, rounds: int) -> SizeResult:
    bench.launch_up_to(size)
    ours, theirs = bench.job_ids[:size], bench.anchor_ids[:size]
    result = SizeResult(size)
    print(f"  settled (both tools' servers): {settle(bench, size)}; load {load_average()}")
    result.samples = {name: Samples() for name in WAYS}
    calls: dict[str, Callable[[], Run]] = {
        "ours ID": lambda: bench.ours_cli([ours[0]]),
        "anchor ID": lambda: bench.anchor_cli([theirs[0]]),
        "ours N ids": lambda: bench.ours_ids(ours),
        "anchor N x ID": lambda: bench.anchor_per_id(theirs),
        "ours all": lambda: bench.ours_cli(["--json-mode"]),
        "anchor all": lambda: bench.anchor_cli(["--json-mode"]),
    }
    for index in range(rounds):
        order = list(WAYS) if index % 2 == 0 else list(reversed(WAYS))
        for name in order:
            if name == "ours in-proc":
                seconds, commands, states = bench.ours_in_process(ours)
                result.samples[name].add(Run(seconds, 0, "", ""))
                result.in_process_commands.append(commands)
                result.states = states
            else:
                result.samples[name].add(calls[name]())
    bench.count_calls(size, result)
    return result


def report(results: Sequence[SizeResult], rounds: int) -> None:
    print(f"\nwall time per status call, median of {rounds} interleaved rounds (ms)")
    rows = []
    for result in results:
        s = result.samples
        rows.append(
            [
                str(result.size),
                ms(s["ours ID"].median),
                ms(s["anchor ID"].median),
                ratio(s["ours ID"].median, s["anchor ID"].median),
                ms(s["ours N ids"].median),
                ms(s["anchor N x ID"].median),
                ratio(s["ours N ids"].median, s["anchor N x ID"].median),
                ms(s["ours all"].median),
                ms(s["anchor all"].median),
                ratio(s["ours all"].median, s["anchor all"].median),
                ms(s["ours in-proc"].median),
            ]
        )
    print_table(
        [
            "N",
            "ours ID",
            "anchor ID",
            "ratio",
            "ours N ids",
            "anchor N x ID",
            "ratio",
            "ours all",
            "anchor all",
            "ratio",
            "ours in-proc",
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
                _calls(calls["ours N ids"], result.processes["ours N ids"]),
                _calls(calls["anchor N x ID"], result.processes["anchor N x ID"]),
                _calls(calls["ours all"], result.processes["ours all"]),
                _calls(calls["anchor all"], result.processes["anchor all"]),
                "/".join(str(count) for count in in_process),
                str(result.anchor_all_found),
            ]
        )
    print_table(
        [
            "N",
            "ours N ids",
            "anchor N x ID",
            "ours all",
            "anchor all",
            "ours in-proc",
            "anchor all: jobs",
        ],
        call_rows,
    )

    print("\nstates of our servers (last round):")
    for result in results:
        states = ", ".join(f"{state} {count}" for state, count in sorted(result.states.items()))
        print(f"  N={result.size}: {states}")


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
                print(f"N={size}: up to {size} servers per tool; load average {load_average()}")
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
