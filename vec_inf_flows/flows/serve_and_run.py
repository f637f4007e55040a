"""serve_and_run: one model's server from launch (or attach) to shutdown, with the work between."""

import logging
import time
from typing import Any

from prefect import flow

from vec_inf_flows.artifacts import metrics_rows, publish_launch_table, publish_table
from vec_inf_flows.blocks import LaunchOverrides, SlurmCluster, VecInfServer
from vec_inf_flows.errors import ConfigError, VecInfError
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._lifecycle import (
    LaunchedServers,
    enable_library_logs,
    launched_servers,
    teardown_hook,
)
from vec_inf_flows.flows._workload import Workload, run_any
from vec_inf_flows.models import LaunchResponse, ServerStatus
from vec_inf_flows.tasks import (
    collect_metrics,
    get_client,
    launch_server,
    load_cluster,
    load_server,
    shutdown_server,
    wait_until_ready,
)

logger = logging.getLogger("vec_inf_flows")
SETTLE_SECONDS = 30.0


def start_server(
    servers: LaunchedServers,
    model_name: str | None,
    launch_options: LaunchOverrides | None,
    server: VecInfServer | None,
) -> LaunchResponse:
    """Launch one server and register it for teardown before anything else can fail."""
    launched = launch_server(model_name, launch_options, servers.cluster, server)
    servers.add(launched.job_id)
    publish_launch_table(launched.model_name, launched.job_id, launched.config, "SUBMITTED")
    return launched


def best_effort_metrics(job_id: str, cluster: SlurmCluster | None) -> dict[str, Any]:
    """Metrics are a report, not the result: failing to scrape them must not fail the run."""
    state = collect_metrics(job_id, cluster, return_state=True)
    try:
        metrics: dict[str, Any] = state.result()
    except Exception as error:
        logger.warning("no metrics for job %s: %s", job_id, error)
        return {"error": str(error)}
    publish_table(
        f"vec-inf-metrics-{job_id}", metrics_rows(metrics), f"Server metrics of job {job_id}."
    )
    return metrics


def _replaceable(
    servers: LaunchedServers,
    job_id: str,
    dataset: str | None,
    replaced: int,
    relaunches: int,
    cluster: SlurmCluster | None,
) -> bool:
    """Relaunch only a server we launched, that is really gone, for a resumable dataset run.

    A dying engine can answer 503 for a moment before its process exits, so the status gets
    ``SETTLE_SECONDS`` to become final; a server that is READY again was not the problem.
    """
    if dataset is None or replaced >= relaunches or job_id not in servers.job_ids:
        return False
    client = get_client(cluster)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            status = client.status(job_id)
        except VecInfError as error:
            logger.warning("cannot tell whether server %s is alive: %s", job_id, error)
            return False
        if status.terminal or status.server_status is ServerStatus.READY:
            return status.terminal
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def finish(servers: LaunchedServers, job_id: str) -> None:
    """Shut a server down as a visible task run; the registry's plain call is the fallback."""
    state = shutdown_server(job_id, servers.cluster, return_state=True)
    if state.is_completed():
        servers.forget(job_id)


@flow(
    name="serve-and-run",
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def serve_and_run(
    model_name: str | None = None,
    job_id: str | None = None,
    dataset: str | None = None,
    workload: Workload | None = None,
    chunk_size: int = 500,
    output: str | None = None,
    output_dir: str | None = None,
    launch_options: LaunchOverrides | None = None,
    cluster_block: str | None = None,
    server_block: str | None = None,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
    relaunches: int = 1,
) -> dict[str, Any]:
    """Provision a server (or attach to ``job_id``), run the workload, collect metrics, shut down.

    ``dataset`` is a JSONL file of requests, sent ``chunk_size`` at a time (one task run per
    chunk); results go to ``output`` (one JSONL record per request id) or, without it, to a
    file per model in ``output_dir`` (default: next to the dataset). ``workload`` is
    ``"package.module:function"`` called as ``(base_url, model_name)``.
    A server given by ``job_id`` is used as is and never shut down by this flow.
    If a server this flow launched dies while the dataset runs, it is replaced (up to
    ``relaunches`` times) and the dataset goes on where it stopped: requests already answered
    are in the output and are not sent again.
    """
    check_parameters(locals())  # before anything is launched
    enable_library_logs()
    server = load_server(server_block)
    cluster = load_cluster(cluster_block) or (server.cluster if server else None)
    if job_id is None and not (model_name or server):
        raise ConfigError("serve_and_run needs a model_name, a server_block or a job_id.")
    with launched_servers(cluster) as servers:
        if job_id is not None:
            ready = wait_until_ready(job_id, ready_timeout, poll_interval, cluster)
        else:
            launched = start_server(servers, model_name, launch_options, server)
            ready = wait_until_ready(launched.job_id, ready_timeout, poll_interval, cluster)
        replaced = 0
        while True:
            assert ready.base_url is not None  # READY always carries its URL
            try:
                summary = run_any(
                    ready.base_url,
                    ready.model_name,
                    dataset=dataset,
                    workload=workload,
                    chunk_size=chunk_size,
                    output_dir=output_dir,
                    output=output,
                )
                break
            except Exception as error:
                if not _replaceable(servers, ready.job_id, dataset, replaced, relaunches, cluster):
                    raise
                replaced += 1
                logger.warning(
                    "server %s died during the run (%s); launching replacement %d of %d",
                    ready.job_id, error, replaced, relaunches,
                )  # fmt: skip
                finish(servers, ready.job_id)
                launched = start_server(servers, model_name, launch_options, server)
                ready = wait_until_ready(launched.job_id, ready_timeout, poll_interval, cluster)
        if isinstance(summary, dict) and replaced:
            summary["relaunches"] = replaced
        metrics = best_effort_metrics(ready.job_id, cluster)
        launched_here = ready.job_id in servers.job_ids
        if launched_here:
            finish(servers, ready.job_id)
    return {
        "model_name": ready.model_name,
        "job_id": ready.job_id,
        "base_url": ready.base_url,
        "launched": launched_here,
        "workload": summary,
        "metrics": metrics,
    }
