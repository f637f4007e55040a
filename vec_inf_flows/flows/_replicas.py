"""Replica groups in the flows, in one place: the plan a flow makes for a group, launching it
into the run's registry, and one model's serving (a server or a group) from launch to shutdown.

``replica_plan`` is the only place a flow builds a ``ReplicaPlan``, so whatever every member of
a flow's group must carry (the run's labels today) is added there once. ``ModelServing`` is
what ``serve_and_run`` and ``evaluate`` provision per model: one server as before, or a group
whose work starts on its first READY replica.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions, merge_options
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.events import emit_server_event
from vec_inf_flows.flows._serving import best_effort_metrics, finish, start_server
from vec_inf_flows.flows._workload import Work, run_any
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.presentation import key_value, metrics_table, replica_rows
from vec_inf_flows.replicas.budget import SharedBudget
from vec_inf_flows.replicas.elastic import ElasticPolicy
from vec_inf_flows.replicas.plan import ReplicaPlan, RouterSettings
from vec_inf_flows.replicas.scale import Scale
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.replicas.status import group_status
from vec_inf_flows.replicas.summary import ReplicaSummary
from vec_inf_flows.replicas.watcher import EventKind, ReplicaEvent
from vec_inf_flows.results import ServeResult
from vec_inf_flows.server.metrics import ServerMetrics
from vec_inf_flows.tasks.leases import run_owner
from vec_inf_flows.tasks.ownership import LaunchedServers, owner_labels
from vec_inf_flows.tasks.replicas import (
    launch_replica_group,
    release_group,
    shutdown_replica_group,
    wait_for_first_replica,
)
from vec_inf_flows.tasks.server import wait_until_ready
from vec_inf_flows.workload.reader import iter_chunks

logger = logging.getLogger("vec_inf_flows")
Target = ServerHandle | ServingGroup


def replica_plan(
    model_name: str,
    options: LaunchOptions | None,
    block: VecInfServer | None,
    servers: LaunchedServers,
    scale: Scale,
) -> ReplicaPlan:
    """The one place a flow makes a group's plan: options merged as for one server (cluster <
    server block < the call), the block's API key, and the run's labels on every member."""
    cluster = servers.cluster
    if block is not None:
        merged = block.launch_options(cluster, options)
    else:
        merged = merge_options(cluster.options if cluster else None, options)
    return ReplicaPlan(
        model_name=model_name,
        replicas=scale.replicas,
        options=merged,
        api_key=block.api_key if block else None,
        relaunches=scale.relaunches,
        max_gpus=scale.max_gpus,
        max_concurrent=scale.max_concurrent,
        router=RouterSettings(place=scale.router),
        lease=servers.lease,
        owner=run_owner(),
        labels=owner_labels(),
    )


def start_group(
    servers: LaunchedServers,
    model_name: str,
    options: LaunchOptions | None,
    block: VecInfServer | None,
    scale: Scale,
    shared: SharedBudget | None = None,
) -> ServingGroup:
    """Launch a group; every member (and every later replacement) is registered for teardown
    the moment it is queued."""
    plan = replica_plan(model_name, options, block, servers, scale)
    elastic = ElasticPolicy() if scale.elastic else None

    def on_event(event: ReplicaEvent) -> None:
        if event.kind is EventKind.LAUNCHED:
            servers.add(event.job_id)
        elif event.kind is EventKind.READY:
            emit_server_event("ready", event.job_id, model_name, base_url=event.base_url)
        elif event.kind is EventKind.LOST:
            emit_server_event("failed", event.job_id, model_name, reason=event.detail)

    group = launch_replica_group(plan, servers.cluster, shared, elastic, on_event)
    for job_id in group.member_ids():
        servers.add(job_id)
    group.cluster = servers.cluster.name if servers.cluster else None
    return group


def stop_group(servers: LaunchedServers, group: ServingGroup, reason: str) -> None:
    """Stop the group as a visible task run; the plain call, then the registry, as fallbacks."""
    state = shutdown_replica_group(group, reason, return_state=True)
    if state.is_completed() or release_group(group, reason):
        for job_id in group.member_ids():
            servers.forget(job_id)


def group_metrics(group: ServingGroup) -> tuple[ServerMetrics | None, str | None]:
    """The replicas still serving at the end, read as one server; a report, never a failure."""
    try:
        metrics = group.metrics()
    except Exception as error:
        logger.warning("no metrics for group %s: %s", group.job_id, error)
        return None, str(error)
    publish_table(
        f"vec-inf-metrics-{group.model_name}",
        metrics_table(metrics),
        f"Server metrics of {group.model_name} (replica group {group.job_id}, the replicas "
        "still serving, added up) after the run.",
    )
    return metrics, None


def request_count(dataset: str) -> int:
    return sum(chunk.count for chunk in iter_chunks(Path(dataset).expanduser(), 10_000))


class ModelServing:
    """One model's server or replica group in a flow run, from launch to shutdown.

    ``launch()`` then ``ready()`` give what the workload tasks take (a READY server's handle,
    or the group once its first replica is READY); ``stop()`` (or leaving a ``with`` block)
    shuts it all down.
    """

    def __init__(
        self,
        servers: LaunchedServers,
        model_name: str | None,
        options: LaunchOptions | None,
        scale: Scale,
        *,
        block: VecInfServer | None = None,
        shared: SharedBudget | None = None,
    ) -> None:
        self.servers = servers
        self.model_name = model_name or (block.model_name if block else None)
        self.options = options
        self.scale = scale
        self.block = block
        self.shared = shared
        self.target: Target | None = None

    @property
    def grouped(self) -> bool:
        return self.scale.grouped or self.shared is not None

    @property
    def job_id(self) -> str | None:
        """The server's job id or the group id, once launched."""
        return self.target.job_id if self.target is not None else None

    def launch(self) -> Target:
        """Submit the server, or the group (queued replicas; an elastic group its first)."""
        if not self.grouped:
            self.target = start_server(self.servers, self.model_name, self.options, self.block)
            return self.target
        if self.model_name is None:
            raise ConfigError("A replica group needs a model name.")
        self.target = start_group(
            self.servers, self.model_name, self.options, self.block, self.scale, self.shared
        )
        return self.target

    def ready(
        self,
        ready_timeout: float,
        poll_interval: float,
        datasets: list[str] | tuple[str, ...] = (),
        endpoint: bool = False,
    ) -> Target:
        """Wait for READY: the server, or the group's first replica (and with ``endpoint`` its
        router). ``datasets``: what the group will serve (an elastic group sizes itself by it)."""
        target = self.target
        if target is None:
            raise ConfigError("Nothing launched yet.")
        if isinstance(target, ServerHandle):
            cluster = self.servers.cluster
            self.target = wait_until_ready(target, ready_timeout, poll_interval, cluster)
            return self.target
        if target.elastic:
            for dataset in datasets:
                target.expect(str(Path(dataset).expanduser()), request_count(dataset))
        wait_for_first_replica(target, ready_timeout, poll_interval, endpoint)
        return target

    def metrics(self) -> tuple[ServerMetrics | None, str | None]:
        if isinstance(self.target, ServingGroup):
            return group_metrics(self.target)
        if self.target is None:
            return None, "no server"
        return best_effort_metrics(self.target, self.servers.cluster)

    def replicas(self) -> ReplicaSummary | None:
        """What the group did (None for one server), published as ``vec-inf-replicas-<model>``;
        learns the endpoint if a router runs."""
        group = self.target
        if not isinstance(group, ServingGroup):
            return None
        if group.endpoint is None and group.group.record.router is not None:
            try:
                group.endpoint = group_status(group.group).endpoint
            except Exception as error:
                logger.warning("no endpoint for group %s: %s", group.job_id, error)
        summary = group.summary()
        publish_table(
            f"vec-inf-replicas-{group.model_name}",
            key_value("Replicas", replica_rows(summary)),
            f"Replica group {group.job_id} of {group.model_name}: the jobs that served, "
            f"{len(summary.replacements)} replacement(s)"
            + (f", endpoint {summary.endpoint}." if summary.endpoint else "."),
        )
        return summary

    def handle(self) -> ServerHandle | None:
        """For results: the server's handle, or the group as one, without any key."""
        if isinstance(self.target, ServingGroup):
            return self.target.handle()
        return self.target.without_secret() if self.target is not None else None

    def stop(self, reason: str = "the run ended") -> None:
        if isinstance(self.target, ServingGroup):
            stop_group(self.servers, self.target, reason)
        elif self.target is not None:
            finish(self.servers, self.target)

    def __enter__(self) -> ModelServing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop("the run ended" if error is None else f"the run failed: {error}")


def serve_group(
    servers: LaunchedServers,
    model_name: str | None,
    options: LaunchOptions | None,
    block: VecInfServer | None,
    scale: Scale,
    work: Work,
    ready_timeout: float,
    poll_interval: float,
) -> ServeResult:
    """``serve_and_run`` on a replica group: work starts on the first READY replica; a workload
    callable waits for the router and gets its endpoint."""
    with ModelServing(servers, model_name, options, scale, block=block) as serving:
        serving.launch()
        datasets = [work.dataset] if work.dataset else []
        target = serving.ready(ready_timeout, poll_interval, datasets, work.workload is not None)
        summary, custom = run_any(target, work)
        metrics, metrics_error = serving.metrics()
        replicas = serving.replicas()  # first: it learns the endpoint the handle shows
        handle = serving.handle()
        assert handle is not None
        return ServeResult(
            server=handle,
            launched=True,
            workload=summary,
            custom=custom,
            metrics=metrics,
            metrics_error=metrics_error,
            replicas=replicas,
        )
