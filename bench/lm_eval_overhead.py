"""What our lm-eval runner costs over lm-eval pointed by hand at the same READY server.

Each round runs every variant once, in turn, against one server (target: the runner <= 1.10x
the hand run). Wall time is the target; CPU time (this process and its children, which hardly
moves with the machine's load) shows what each variant itself spends. The hand run is the
command a user would type: ``lm_eval run --model local-completions`` with the same model_args,
tasks, batch size and chat template, and task YAMLs with absolute data paths. Our runner adds
its pre-checks, the task folder, the response cache, the subprocess and the parsing of results.
Both report their scores; they must agree.

A variant is a function ``(Target, folder) -> scores``. lm-eval through the ``evaluate`` flow
is measured by ``lm_eval_flow.py`` (it needs Slurm jobs and a Prefect API).

    .venv/bin/python bench/lm_eval_overhead.py               # real SmolLM2, local Slurm cluster
    .venv/bin/python bench/lm_eval_overhead.py --engine sim  # the simulator, no Slurm
    .venv/bin/python bench/lm_eval_overhead.py --job-id 123  # a READY job of yours

Needs the lm-eval extra and ``vec-inf-flows engine setup cpu`` (for the weights' tokenizer).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.engines.cpu import CpuEngine
from vec_inf_flows.evals import EvalServer, LmEvalSpec, run_lm_eval
from vec_inf_flows.evals.results import parse_results, results_file
from vec_inf_flows.evals.servers import eval_server_for_job
from vec_inf_flows.evals.task_files import write_bundled
from vec_inf_flows.sim.process import SimServer

MODEL = "SmolLM2-135M-Instruct"
TASKS = ["vec_inf_qa_gen", "vec_inf_qa_mc"]


@dataclass(frozen=True)
class Target:
    server: EvalServer
    spec: LmEvalSpec


Scores = dict[str, float | None]


def _scores(results: dict[str, object]) -> Scores:
    out: Scores = {}
    for name, result in sorted(results.items()):
        for metric in getattr(result, "metrics", []):
            out[f"{name}:{metric.name}"] = metric.value
    return out


def by_hand(target: Target, folder: Path) -> Scores:
    """lm-eval as its README shows it, with this server's settings."""
    server, spec = target.server, target.spec
    tasks_dir = write_bundled(folder / "tasks")
    model_args = (
        f"model={server.model},base_url={server.base_url}/completions,"
        f"tokenizer={server.tokenizer},tokenizer_backend=huggingface,"
        f"num_concurrent={server.num_concurrent}"
    )
    if server.max_length:
        model_args += f",max_length={server.max_length}"
    argv = [sys.executable, "-m", "lm_eval", "run", "--model", "local-completions"]
    argv += ["--model_args", model_args, "--tasks", ",".join(spec.tasks)]
    argv += ["--batch_size", str(spec.batch_size), "--include_path", str(tasks_dir)]
    argv += ["--output_path", str(folder / "out")]
    if spec.apply_chat_template:
        argv.append("--apply_chat_template")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run(argv, env=env, check=True, capture_output=True)
    found = results_file(folder / "out")
    return _scores(dict(parse_results(found))) if found else {}


def runner(target: Target, folder: Path) -> Scores:
    report = run_lm_eval(target.server, target.spec, folder)
    if not report.ok:
        raise SystemExit(f"runner failed: {[t.error for t in report.tasks]}")
    return _scores({t.task: t for t in report.tasks})


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike wall time on a shared
    machine, it hardly moves with the load, so it shows what each variant itself costs."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


VARIANTS: dict[str, Callable[[Target, Path], Scores]] = {"by hand": by_hand, "runner": runner}


@contextlib.contextmanager
def real_server(job_id: str | None) -> Iterator[EvalServer]:
    client = VecInfClient()
    if job_id:
        yield eval_server_for_job(client, job_id)
        return
    CpuEngine.default().setup()
    launched = client.launch(MODEL, time="00:30:00")
    try:
        client.wait_until_ready(launched.job_id, timeout=900, poll_interval=1)
        print(f"job {launched.job_id} READY")
        yield eval_server_for_job(client, launched.job_id)
    finally:
        client.shutdown(launched.job_id)


@contextlib.contextmanager
def sim_server() -> Iterator[EvalServer]:
    weights = CpuEngine.default().weights / MODEL
    if not (weights / "tokenizer.json").exists():
        raise SystemExit(f"no tokenizer at {weights}: run `vec-inf-flows engine setup cpu`")
    args = [str(weights), "--served-model-name", MODEL, "--max-model-len", "2048"]
    args += ["--max-num-seqs", "16", "--sim-tokenizer", str(weights)]
    args += ["--sim-tokens-per-second", "200", "--disable-uvicorn-access-log"]
    with SimServer(args) as sim:
        yield EvalServer(model=MODEL, base_url=sim.base_url, tokenizer=weights, num_concurrent=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["vllm", "sim"], default="vllm")
    parser.add_argument("--job-id", help="a READY job to use instead of launching one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--no-chat-template", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the raw times as JSON")
    args = parser.parse_args()
    spec = LmEvalSpec(
        tasks=TASKS, batch_size=args.batch_size, apply_chat_template=not args.no_chat_template
    )
    server_cm = sim_server() if args.engine == "sim" else real_server(args.job_id)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    scores: dict[str, list[Scores]] = {name: [] for name in VARIANTS}
    with server_cm as server, tempfile.TemporaryDirectory() as scratch:
        target = Target(server, spec)
        print(f"server {server.base_url} ({server.model}), num_concurrent {server.num_concurrent}")
        for round_no in range(1, args.rounds + 1):
            for name, variant in VARIANTS.items():
                folder = Path(scratch) / f"{round_no}-{name.replace(' ', '-')}"
                started, cpu_before = time.perf_counter(), cpu_seconds()
                scores[name].append(variant(target, folder))
                times[name].append(time.perf_counter() - started)
                cpu[name].append(cpu_seconds() - cpu_before)
                print(
                    f"round {round_no} {name:>8}: {times[name][-1]:6.2f} s wall, "
                    f"{cpu[name][-1]:5.2f} s CPU  {scores[name][-1]}"
                )
    hand, hand_cpu = statistics.median(times["by hand"]), statistics.median(cpu["by hand"])
    print(f"\nload average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = (
        f"{'variant':<10} {'median s':>9} {'min s':>7} {'x hand':>7} {'CPU s':>7} {'x hand':>7}"
    )
    print(header)
    for name, values in times.items():
        median, median_cpu = statistics.median(values), statistics.median(cpu[name])
        print(
            f"{name:<10} {median:9.2f} {min(values):7.2f} {median / hand:7.2f} "
            f"{median_cpu:7.2f} {median_cpu / hand_cpu:7.2f}"
        )
    agree = all(s == scores["by hand"][0] for runs in scores.values() for s in runs)
    print(f"scores identical across variants and rounds: {agree}")
    if args.json:
        print(json.dumps({"times": times, "cpu": cpu, "scores": scores}))


if __name__ == "__main__":
    main()
