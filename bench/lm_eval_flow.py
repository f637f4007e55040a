"""What ``evaluate`` costs over lm-eval pointed by hand at a READY server (target <= 1.10x).

Each round runs, in turn:

- ``by hand``: ``lm_eval run --model local-completions ...`` typed as a user would
  (``lm_eval_overhead.by_hand``) against the bench's READY server on the local Slurm cluster;
- ``flow step``: a Prefect flow run doing what ``evaluate`` does for a model once its server is
  READY (``run_lm_eval_rows``: the ``run-lm-eval`` task run, lm-eval's files, one row per task),
  against the SAME READY server; timed around the whole flow call;
- ``evaluate``: the ``evaluate`` flow itself with ``lm_eval`` (it launches and stops a server of
  its own with the same settings); its lm-eval part is the duration of its ``run-lm-eval`` task
  run as Prefect recorded it. The whole run's wall time is printed too (launch, wait, shutdown).

CPU time (this process and its finished children: lm-eval) is printed too; for ``evaluate`` it
covers the whole flow run (launch, waiting, shutdown), not only its lm-eval part. The order of
the three rotates from round to round; the ratios are the medians' against
``by hand``; the primary scores must agree.

    .venv/bin/python bench/lm_eval_flow.py                 # simulator jobs on the local cluster
    .venv/bin/python bench/lm_eval_flow.py --engine vllm   # the real SmolLM2 on the CPU vLLM

Needs the lm-eval extra, the local Slurm cluster and ``vec-inf-flows engine setup cpu`` (the
weights' tokenizer). Without PREFECT_API_URL a temporary Prefect server is started for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lm_eval_overhead import MODEL, TASKS, Scores, Target, by_hand, cpu_seconds
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from rich.console import Console

from vec_inf_flows.cli.prefect_server import api_for_run
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.engines.cpu import CpuEngine
from vec_inf_flows.evals import LmEvalSpec
from vec_inf_flows.evals.servers import eval_server_for_job
from vec_inf_flows.flows import evaluate
from vec_inf_flows.flows._lm_eval import LmEvalJob, run_lm_eval_rows
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.results import EvaluationRow

Timed = tuple[float, Scores]  # (the lm-eval part's wall seconds, primary scores)


def launch_options(engine: str, log_dir: Path) -> dict[str, Any]:
    weights = CpuEngine.default().weights
    if not (weights / MODEL / "tokenizer.json").exists():
        raise SystemExit(f"no tokenizer under {weights}: run `vec-inf-flows engine setup cpu`")
    options: dict[str, Any] = {"time": "00:30:00", "log_dir": str(log_dir)}
    if engine == "sim":
        sim = [
            "--sim-startup-delay=0.3",
            "--max-num-seqs=16",
            f"--sim-tokenizer={weights / MODEL}",
            "--sim-tokens-per-second=200",
            "--disable-uvicorn-access-log",
        ]
        options |= {
            "engine": "sim",
            "model_weights_parent_dir": str(weights),
            "vllm_args": ",".join(sim),
        }
    return options


@contextlib.contextmanager
def ready_server(options: dict[str, Any]) -> Iterator[ServerHandle]:
    client = VecInfClient()
    launched = client.launch(MODEL, options)
    try:
        handle = client.attach(launched.job_id)  # the handle evaluate's tasks get
        ready = client.wait_until_ready(handle, timeout=900, poll_interval=1)
        print(f"job {ready.job_id} READY at {ready.base_url}")
        yield ready
    finally:
        client.shutdown(launched.job_id)


def primary(rows: list[EvaluationRow]) -> Scores:
    return {
        f"{row.lm_eval.task}:{row.lm_eval.metric}": row.lm_eval.value
        for row in rows
        if row.lm_eval is not None
    }


@flow(name="lm-eval-step")
def lm_eval_step(server: ServerHandle, spec: LmEvalSpec, folder: str) -> list[EvaluationRow]:
    return run_lm_eval_rows(server, LmEvalJob(spec, Path(folder)))


def run_step(server: ServerHandle, spec: LmEvalSpec, folder: Path) -> Timed:
    started = time.perf_counter()
    rows = lm_eval_step(server, spec, str(folder))
    return time.perf_counter() - started, primary(rows)


def lm_eval_task_seconds(flow_run_id: Any) -> float:
    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    (run,) = [r for r in runs if r.name.startswith("lm-eval-")]
    assert run.start_time is not None and run.end_time is not None
    return (run.end_time - run.start_time).total_seconds()


def run_evaluate(
    options: dict[str, Any], spec: LmEvalSpec, folder: Path, whole: list[float]
) -> Timed:
    started = time.perf_counter()
    state = evaluate(
        [MODEL],
        lm_eval=spec,
        output_dir=str(folder),
        evaluation_name="bench",
        launch_options=options,
        ready_timeout=900,
        poll_interval=1,
        return_state=True,
    )
    whole.append(time.perf_counter() - started)
    if not state.is_completed():
        raise SystemExit(f"evaluate failed: {state.message}")
    rows: list[EvaluationRow] = state.result()
    return lm_eval_task_seconds(state.state_details.flow_run_id), primary(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sim", "vllm"], default="sim")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    spec = LmEvalSpec(tasks=TASKS, apply_chat_template=True)
    times: dict[str, list[float]] = {"by hand": [], "flow step": [], "evaluate": []}
    scores: dict[str, list[Scores]] = {name: [] for name in times}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    whole: list[float] = []
    with tempfile.TemporaryDirectory() as scratch, api_for_run(Console()):
        options = launch_options(args.engine, Path(scratch) / "logs")
        with ready_server(options) as server:
            eval_server = eval_server_for_job(VecInfClient(), server.job_id)
            print(f"lm-eval sees: num_concurrent {eval_server.num_concurrent}, max_length "
                  f"{eval_server.max_length}, tokenizer {eval_server.tokenizer}")  # fmt: skip
            hand_target = Target(eval_server, spec)
            variants: dict[str, Callable[[Path], Timed]] = {
                "by hand": lambda f: _timed_hand(hand_target, f),
                "flow step": lambda f: run_step(server, spec, f),
                "evaluate": lambda f: run_evaluate(options, spec, f, whole),
            }
            names = list(variants)
            for round_no in range(1, args.rounds + 1):
                shift = (round_no - 1) % len(names)  # each variant goes first in turn
                for name in names[shift:] + names[:shift]:
                    variant = variants[name]
                    folder = Path(scratch) / f"{round_no}-{name.replace(' ', '-')}"
                    cpu_before = cpu_seconds()
                    seconds, found = variant(folder)
                    cpu[name].append(cpu_seconds() - cpu_before)
                    times[name].append(seconds)
                    scores[name].append(found)
                    print(f"round {round_no} {name:>9}: {seconds:6.2f} s  {found}")
    hand = statistics.median(times["by hand"])
    print(f"\nload average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    hand_cpu = statistics.median(cpu["by hand"])
    print(f"{'variant':<10} {'median s':>9} {'min s':>7} {'x hand':>7} {'CPU s':>7} {'x hand':>7}")
    for name, values in times.items():
        median, median_cpu = statistics.median(values), statistics.median(cpu[name])
        print(
            f"{name:<10} {median:9.2f} {min(values):7.2f} {median / hand:7.2f} "
            f"{median_cpu:7.2f} {median_cpu / hand_cpu:7.2f}"
        )
    print(f"evaluate, whole flow run (launch, wait, lm-eval, shutdown): median "
          f"{statistics.median(whole):.2f} s")  # fmt: skip
    reference = scores["by hand"][0]
    agree = all(
        reference.get(key) == value
        for runs in scores.values()
        for found in runs
        for key, value in found.items()
        if key in scores["flow step"][0]
    )
    print(f"primary scores identical across variants and rounds: {agree}")


def _timed_hand(target: Target, folder: Path) -> Timed:
    started = time.perf_counter()
    found = by_hand(target, folder)
    return time.perf_counter() - started, found


if __name__ == "__main__":
    main()
