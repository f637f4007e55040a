"""What the flows share around one server: launching it into the run's registry, its metrics
as a report, shutting it down as a visible task run, naming runs, and failing a run that sent
its work but got too few answers."""

from __future__ import annotations

import logging
from typing import Any, TypeVar, cast

from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Failed

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import SlurmCluster, VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.presentation import metrics_table
from vec_inf_flows.results import ServeResult, WorkloadFailed, WorkloadSummary
from vec_inf_flows.server.metrics import ServerMetrics
from vec_inf_flows.tasks.ownership import LaunchedServers
from vec_inf_flows.tasks.server import collect_metrics, launch_server, shutdown_server

logger = logging.getLogger("vec_inf_flows")
R = TypeVar("R")


def start_server(
    servers: LaunchedServers,
    model_name: str | None,
    options: LaunchOptions | None,
    server: VecInfServer | None,
) -> ServerHandle:
    """Launch one server, leased as the run's registry says, and register it for teardown
    before anything else can fail."""
    handle = launch_server(model_name, options, servers.cluster, server, servers.lease)
    servers.add(handle.job_id)
    return handle


def best_effort_metrics(
    server: ServerHandle, cluster: SlurmCluster | None
) -> tuple[ServerMetrics | None, str | None]:
    """Metrics are a report, not the result: failing to scrape them must not fail the run.
    Published as ``vec-inf-metrics-<model>``: one versioned series per model."""
    state = collect_metrics(server, cluster, return_state=True)
    try:
        metrics: ServerMetrics = state.result()
    except Exception as error:
        logger.warning("no metrics for job %s: %s", server.job_id, error)
        return None, str(error)
    publish_table(
        f"vec-inf-metrics-{server.model_name}",
        metrics_table(metrics),
        f"Server metrics of {server.model_name} (job {server.job_id}) after the run.",
    )
    return metrics, None


def served(
    server: ServerHandle,
    launched: bool,
    work: tuple[WorkloadSummary | None, dict[str, Any] | None],
    cluster: SlurmCluster | None,
) -> ServeResult:
    """One server's result: what ``run_any`` did on it and its metrics (scraped now, before
    any shutdown); the handle without its key."""
    metrics, metrics_error = best_effort_metrics(server, cluster)
    summary, custom = work
    return ServeResult(
        server=server.without_secret(),
        launched=launched,
        workload=summary,
        custom=custom,
        metrics=metrics,
        metrics_error=metrics_error,
    )


def finish(servers: LaunchedServers, server: ServerHandle) -> None:
    """Shut a server down as a visible task run; the registry's plain call is the fallback."""
    state = shutdown_server(server, servers.cluster, return_state=True)
    if state.is_completed():
        servers.forget(server.job_id)


def failed_run(message: str, result: R) -> R:
    """End the run FAILED with ``message`` as its state message, keeping ``result``.

    Prefect makes a state a flow returns its final state, so the run fails without an
    exception traceback in its logs; calling the flow directly raises ``WorkloadFailed``,
    whose ``result`` is the typed result, and so does ``state.result()``.
    """
    return cast(R, Failed(message=message, data=WorkloadFailed(message, result)))


def _name_of(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "model_name", value))


def run_name(prefix: str, *parameters: str) -> Any:
    """A flow-run name from the first parameter set: ``serve-<model>``, ``evaluate-<model>+2``."""

    def name() -> str:
        params = runtime_flow_run.parameters
        for parameter in parameters:
            value = params.get(parameter)
            if isinstance(value, list | tuple) and value:
                more = f"+{len(value) - 1}" if len(value) > 1 else ""
                return f"{prefix}-{value[0]}{more}"
            if (text := _name_of(value)) is not None:
                return f"{prefix}-{'job-' if parameter == 'job_id' else ''}{text}"
        return prefix

    return name
