"""evaluate: models × datasets, servers started in parallel under a GPU budget.

Each model runs in its own worker thread: launch, wait, every dataset, metrics, shutdown. A model
that fails (to start or later) becomes rows saying why; the others carry on.
"""

import contextvars
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any

from prefect import flow

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import LaunchOverrides
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._lifecycle import (
    LaunchedServers,
    enable_library_logs,
    launched_servers,
    teardown_hook,
)
from vec_inf_flows.flows._workload import run_dataset
from vec_inf_flows.flows.serve_and_run import best_effort_metrics, finish, start_server
from vec_inf_flows.tasks import load_cluster, wait_until_ready

logger = logging.getLogger("vec_inf_flows")


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
    launch_options: LaunchOverrides | None,
    chunk_size: int,
    output_dir: str | None,
    ready_timeout: float,
    poll_interval: float,
    gpu_limit_name: str | None,
) -> list[dict[str, Any]]:
    """One row per dataset; a failure before the datasets ran becomes one row with the reason."""
    rows: list[dict[str, Any]] = []
    job_id: str | None = None
    try:
        with gpu_slot(gpu_limit_name):
            job_id = start_server(servers, model_name, launch_options, None).job_id
            try:  # from here on the server is ours: shut it down however this ends
                ready = wait_until_ready(job_id, ready_timeout, poll_interval, servers.cluster)
                assert ready.base_url is not None
                for dataset in datasets:
                    summary = run_dataset(
                        ready.base_url, ready.model_name, dataset, chunk_size, output_dir
                    )
                    rows.append({"model": model_name, "job_id": job_id, "status": "ok", **summary})
                metrics = best_effort_metrics(job_id, servers.cluster)
                for row in rows:
                    row["metrics"] = metrics
            finally:
                finish(servers, job_id)
    except Exception as error:
        logger.error("%s failed: %s", model_name, error)
        done = {row["dataset"] for row in rows}
        rows.extend(
            {
                "model": model_name,
                "job_id": job_id,
                "dataset": dataset,
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
            }
            for dataset in datasets
            if dataset not in done
        )
    return rows


def options_for(
    model_name: str,
    launch_options: LaunchOverrides | None,
    model_options: dict[str, LaunchOverrides] | None,
) -> LaunchOverrides | None:
    """The shared options with this model's own laid over them (models differ in what they
    need: a context length, an engine flag, more memory)."""
    own = (model_options or {}).get(model_name)
    if own is None:
        return launch_options
    shared = launch_options.as_kwargs() if launch_options is not None else {}
    return LaunchOverrides.model_validate({**shared, **own.as_kwargs()})


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's columns: identity, outcome, and the summary's counters (metrics left out)."""
    return [{key: value for key, value in row.items() if key != "metrics"} for row in rows]


@flow(
    name="evaluate",
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def evaluate(
    models: list[str],
    datasets: list[str],
    max_parallel_servers: int = 2,
    gpu_limit_name: str | None = None,
    chunk_size: int = 500,
    output_dir: str | None = None,
    launch_options: LaunchOverrides | None = None,
    model_options: dict[str, LaunchOverrides] | None = None,
    cluster_block: str | None = None,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
) -> list[dict[str, Any]]:
    """Evaluate every model on every dataset (JSONL files of requests); return the summary rows.

    At most ``max_parallel_servers`` servers exist at once; ``gpu_limit_name`` additionally
    holds a slot of that Prefect global concurrency limit per server, shared across runs.
    ``model_options`` maps a model name to options laid over ``launch_options`` for it alone.
    """
    check_parameters(locals())  # before anything is launched
    enable_library_logs()
    if not models or not datasets:
        raise ConfigError("evaluate needs at least one model and one dataset.")
    if max_parallel_servers < 1:
        raise ConfigError("max_parallel_servers must be at least 1.")
    cluster = load_cluster(cluster_block)
    rows: list[dict[str, Any]] = []
    # Not a ``with`` block: leaving one would wait for every worker thread before teardown.
    pool = ThreadPoolExecutor(max_parallel_servers, thread_name_prefix="evaluate")
    with launched_servers(cluster) as servers:
        try:
            futures = [
                # Each thread runs in a copy of the run context: its task runs belong to this run.
                pool.submit(
                    contextvars.copy_context().run,
                    evaluate_model,
                    servers,
                    model,
                    datasets,
                    launch_options=options_for(model, launch_options, model_options),
                    chunk_size=chunk_size,
                    output_dir=output_dir,
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
    publish_table(
        "vec-inf-evaluation",
        summary_rows(rows),
        f"{len(models)} models × {len(datasets)} datasets; failed: {failure_summary(rows)}.",
    )
    return rows


def failure_summary(rows: list[dict[str, Any]], limit: int = 300) -> str:
    """Each failed model with its first error, e.g. ``m (ServerError: ... KV cache ...)``."""
    reasons: dict[str, str] = {}
    for row in rows:
        if row["status"] != "ok":
            reasons.setdefault(row["model"], str(row.get("error") or "unknown error")[:limit])
    return "; ".join(f"{model} ({reason})" for model, reason in sorted(reasons.items())) or "none"
