"""evaluate: models × datasets, servers started in parallel under a GPU budget.

Each model runs in its own worker thread: launch, wait, every dataset, metrics, shutdown. A model
that fails (to start or later) becomes rows saying why; the others carry on. The run is FAILED
when any model/dataset pair failed, with the pairs and their reasons as its message.
"""

import contextvars
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Literal

from prefect import flow

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.catalog.options import LaunchOptions, merge_options
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.flows._serving import (
    best_effort_metrics,
    failed_run,
    finish,
    run_name,
    start_server,
)
from vec_inf_flows.flows._workload import run_dataset
from vec_inf_flows.presentation import evaluation_table
from vec_inf_flows.results import EvaluationRow
from vec_inf_flows.tasks.blocks import load_cluster
from vec_inf_flows.tasks.ownership import LaunchedServers, launched_servers, teardown_hook
from vec_inf_flows.tasks.server import wait_until_ready

logger = logging.getLogger("vec_inf_flows")
EngineChoice = Literal["vllm", "sglang", "sim"]


@contextmanager
def gpu_slot(limit_name: str | None) -> Iterator[None]:
    """Hold one slot of a Prefect global concurrency limit, shared with other runs."""
    if limit_name is None:
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit_name, occupy=1, strict=True):
        yield


def evaluate_model(
    servers: LaunchedServers,
    model_name: str,
    datasets: list[str],
    *,
    options: LaunchOptions,
    chunk_size: int,
    output_dir: str | None,
    min_success_ratio: float,
    ready_timeout: float,
    poll_interval: float,
    gpu_limit_name: str | None,
) -> list[EvaluationRow]:
    """One row per dataset; a failure before a dataset ran becomes its row, with the reason."""
    rows: list[EvaluationRow] = []
    job_id: str | None = None
    try:
        with gpu_slot(gpu_limit_name):
            handle = start_server(servers, model_name, options, None)
            job_id = handle.job_id
            try:  # from here on the server is ours: shut it down however this ends
                handle = wait_until_ready(handle, ready_timeout, poll_interval, servers.cluster)
                for dataset in datasets:
                    summary = run_dataset(handle, dataset, chunk_size, output_dir)
                    shortfall = summary.shortfall(min_success_ratio)
                    rows.append(
                        EvaluationRow(
                            model=model_name,
                            dataset=dataset,
                            job_id=job_id,
                            status="failed" if shortfall else "ok",
                            error=shortfall,
                            workload=summary,
                        )
                    )
                metrics, _ = best_effort_metrics(handle, servers.cluster)
                rows = [row.model_copy(update={"metrics": metrics}) for row in rows]
            finally:
                finish(servers, handle)
    except Exception as error:
        logger.error("%s failed: %s", model_name, error)
        done = {row.dataset for row in rows}
        rows.extend(
            EvaluationRow(
                model=model_name,
                dataset=dataset,
                job_id=job_id,
                status="failed",
                error=f"{type(error).__name__}: {error}",
            )
            for dataset in datasets
            if dataset not in done
        )
    return rows


def failure_summary(rows: list[EvaluationRow], limit: int = 300) -> str:
    """Each failed pair with its reason, e.g. ``m on d.jsonl (ServerError: ... KV cache ...)``."""
    reasons = [
        f"{row.model} on {row.dataset} ({str(row.error or 'unknown error')[:limit]})"
        for row in rows
        if row.status != "ok"
    ]
    return "; ".join(reasons) or "none"


@flow(
    name="evaluate",
    flow_run_name=run_name("evaluate", "models"),
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def evaluate(
    models: list[str],
    datasets: list[str],
    engine: EngineChoice | None = None,
    output_dir: str | None = None,
    cluster: SlurmCluster | str | None = None,
    launch_options: LaunchOptions | None = None,
    model_options: dict[str, LaunchOptions] | None = None,
    max_parallel_servers: int = 2,
    gpu_limit_name: str | None = None,
    chunk_size: int = 500,
    min_success_ratio: float = 0.0,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
) -> list[EvaluationRow]:
    """Evaluate every model on every dataset; one summary row per pair, and a table artifact.

    Servers start in parallel, at most ``max_parallel_servers`` at once; a model that fails
    does not stop the others. The run is FAILED if any pair failed (the server did not start,
    or too few of the dataset's requests succeeded), with every failed pair and why in its
    message.

    Args:
        models: Models to evaluate, as the catalog names them.
        datasets: JSONL or CSV files of requests; each model runs every one.
        engine: Inference engine for every model: vllm, sglang or sim; default: the catalog's.
        output_dir: Directory for the result files (one per model and dataset); default: next
            to each dataset.
        cluster: Cluster block (or its name) to launch on; default: this machine's defaults.
        launch_options: Launch options for every model, laid over the cluster's.
        model_options: Options for one model alone, by model name, laid over launch_options.
        max_parallel_servers: Most servers alive at once (the run's GPU budget).
        gpu_limit_name: A Prefect global concurrency limit to hold one slot of per server,
            shared with other runs.
        chunk_size: Requests per task run.
        min_success_ratio: Fraction of a dataset's requests that must succeed for its row to
            be ok; a dataset where none succeeded fails whatever this says.
        ready_timeout: Seconds to wait for each server to become READY.
        poll_interval: Longest pause between two status checks while waiting, in seconds.
    """
    check_parameters(locals())  # before anything is launched
    enable_library_logs()
    if not models or not datasets:
        raise ConfigError("evaluate needs at least one model and one dataset.")
    if max_parallel_servers < 1:
        raise ConfigError("max_parallel_servers must be at least 1.")
    where = load_cluster(cluster)
    shared = merge_options(launch_options, {"engine": engine} if engine else None)
    rows: list[EvaluationRow] = []
    # Not a ``with`` block: leaving one would wait for every worker thread before teardown.
    pool = ThreadPoolExecutor(max_parallel_servers, thread_name_prefix="evaluate")
    with launched_servers(where) as servers:
        try:
            futures = [
                # Each thread runs in a copy of the run context: its task runs belong to this run.
                pool.submit(
                    contextvars.copy_context().run,
                    evaluate_model,
                    servers,
                    model,
                    datasets,
                    options=merge_options(shared, (model_options or {}).get(model)),
                    chunk_size=chunk_size,
                    output_dir=output_dir,
                    min_success_ratio=min_success_ratio,
                    ready_timeout=ready_timeout,
                    poll_interval=poll_interval,
                    gpu_limit_name=gpu_limit_name,
                )
                for model in models
            ]
            for future in futures:
                rows.extend(future.result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    failures = failure_summary(rows)
    publish_table(
        "vec-inf-evaluation",
        evaluation_table(rows),
        f"{len(models)} models × {len(datasets)} datasets; failed: {failures}.",
    )
    failed = sum(row.status != "ok" for row in rows)
    if failed:
        return failed_run(f"{failed} of {len(rows)} model/dataset pairs failed: {failures}", rows)
    return rows
