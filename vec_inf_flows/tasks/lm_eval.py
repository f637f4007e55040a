"""The lm-eval task: every requested lm-eval task against one READY server, in one task run.

One task run per model, not per lm-eval task: lm-eval spends seconds importing and building its
tasks in each process, so they run together and a broken one is rerun alone (``run_lm_eval``).
Never retried by Prefect: a task's failure is a result (its row's one line), and requests that
failed were already retried by lm-eval itself.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run as runtime_task_run

from vec_inf_flows.evals.lm_eval import run_lm_eval
from vec_inf_flows.evals.models import EvalServer, LmEvalReport, LmEvalSpec


def _lm_eval_name() -> str:
    server = runtime_task_run.parameters.get("server")
    return f"lm-eval-{getattr(server, 'model', 'server')}"


@task(name="run-lm-eval", task_run_name=_lm_eval_name, cache_policy=NO_CACHE)
def run_lm_eval_task(server: EvalServer, spec: LmEvalSpec, output_dir: str) -> LmEvalReport:
    """Run lm-eval's tasks against a READY server; its files go under ``output_dir``.

    Args:
        server: The server as lm-eval sees it: URL, tokenizer (the weights dir), requests in
            flight, context length, and its key (passed to lm-eval in its environment only).
        spec: The lm-eval tasks and how to run them.
        output_dir: Folder for lm-eval's task files, response cache, logs and results.
    """
    return run_lm_eval(server, spec, Path(output_dir))
