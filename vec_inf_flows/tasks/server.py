"""Tasks for a server's life: launch, batch-launch, wait until READY, metrics, shutdown.

Each is a thin task over the cluster's client with its own retry rule. None caches (a cached
launch or status could hand back a server that died long ago) and the ones that return a
handle never persist their result: the handle holds the server's API key.

Only the launch tasks carry tags (a tag concurrency limit on "gpu-job" throttles submission
bursts); every tagged task run costs a concurrency-slot round trip to the API.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.runtime import task_run as runtime_task_run

from vec_inf_flows.artifacts import publish_launch_table
from vec_inf_flows.blocks import VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.errors import ConfigError, ServerError
from vec_inf_flows.events import emit_server_event
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.models import BatchLaunchResponse
from vec_inf_flows.server.metrics import ServerMetrics
from vec_inf_flows.tasks.blocks import (
    ClusterArg,
    ServerArg,
    client_for,
    cluster_of,
    load_cluster,
    load_server,
)
from vec_inf_flows.tasks.leases import DEFAULT_LEASE, hold_adopted, process_leases, run_owner
from vec_inf_flows.tasks.naming import run_name
from vec_inf_flows.tasks.ownership import find_launched, owner_labels
from vec_inf_flows.tasks.retries import (
    SHORT_AND_REPEATABLE,
    SUBMISSION,
    WAITING,
)
from vec_inf_flows.tasks.teardown import TEARDOWN_TIMEOUT, cancel_and_settle

logger = logging.getLogger("vec_inf_flows")


@task(name="launch-server", task_run_name=run_name("launch", "model_name", "server"), **SUBMISSION)
def launch_server(
    model_name: str | None = None,
    options: LaunchOptions | Mapping[str, Any] | None = None,
    cluster: ClusterArg = None,
    server: ServerArg = None,
    lease: LeasePolicy | None = None,
) -> ServerHandle:
    """Submit one model server and return its handle; never submits twice for one task run.

    The job records its owner (this process, this flow run and its Prefect API URL) and a
    launch key; a retried attempt first looks for a live job with its key and adopts it instead
    of submitting again. The server carries a lease this process renews for as long as it
    lives: if the process is killed or its machine is lost, the job stops by itself once the
    lease lapses. ``release_server`` (or ``shutdown_server``) ends it and stops the renewals.
    Publishes the launch configuration as the artifact ``vec-inf-launch-<model>``.

    Args:
        model_name: Model to serve, as the catalog names it; default: the server block's.
        options: Launch options, laid over the cluster's and the server block's.
        cluster: Cluster block (or its saved name) to launch on; default: the server block's
            cluster, else this machine's defaults.
        server: Model-server block (or its saved name): model, options and API key.
        lease: How often this process renews the server's lease and how long the job waits
            for a renewal before it stops by itself; default: every 60 s, lapsing after 300 s.

    Returns:
        The server's handle (job id, model, key, concurrency; no URL until it is READY).

    Example: ``server = launch_server("SmolLM2-135M-Instruct", {"time": "01:00:00"})``
    """
    block = load_server(server)
    name = model_name or (block.model_name if block else None)
    if not name:
        raise ConfigError("launch_server needs a model_name or a server block.")
    block = (
        block.model_copy(update={"model_name": name}) if block else VecInfServer(model_name=name)
    )
    where = load_cluster(cluster) or block.cluster
    lease = lease or DEFAULT_LEASE
    launch_key = str(runtime_task_run.id or "") or None
    if launch_key and (runtime_task_run.run_count or 1) > 1:
        client = client_for(where)
        adopted = find_launched(client, launch_key)
        if adopted is not None:
            logger.warning("adopting job %s submitted by an earlier attempt", adopted.job_id)
            handle = client.attach(adopted.job_id)
            hold_adopted(handle, lease)
            return handle.model_copy(update={"cluster": where.name if where else None})
    _, launched = block.submit(
        where,
        options,
        owner_labels(launch_key),
        lease=lease,
        owner=run_owner(),
        leases=process_leases(),
    )
    emit_server_event("submitted", launched.job_id, launched.model_name, job_dir=launched.job_dir)
    publish_launch_table(launched, "SUBMITTED")
    logger.info("launched %s as job %s", launched.model_name, launched.job_id)
    return launched.handle


@task(name="batch-launch-servers", task_run_name=run_name("batch-launch"), **SUBMISSION)
def batch_launch_servers(
    model_names: list[str],
    batch_config: str | None = None,
    cluster: ClusterArg = None,
    lease: LeasePolicy | None = None,
) -> BatchLaunchResponse:
    """Submit several models as one heterogeneous job: they start together or not at all.
    Every component carries a lease this process renews, as with ``launch_server``.

    Args:
        model_names: Models to serve, one het-job component each.
        batch_config: A models YAML file merged over the catalog for this batch.
        cluster: Cluster block (or its saved name) whose client submits the job.
        lease: How often this process renews the servers' lease and how long the job waits
            for a renewal before it stops by itself; default: every 60 s, lapsing after 300 s.

    Returns:
        ``job_id`` is the leader (``shutdown_server`` on it ends every component);
        ``servers[i].handle`` is each model's handle.
    """
    if not model_names:
        raise ConfigError("batch_launch_servers needs at least one model name.")
    where = load_cluster(cluster)
    launched = client_for(where).batch_launch(
        model_names,
        batch_config,
        labels=owner_labels(),
        lease=lease or DEFAULT_LEASE,
        owner=run_owner(),
    )
    name = where.name if where else None
    servers = []
    for one in launched.servers:
        emit_server_event("submitted", one.job_id, one.model_name, job_dir=one.job_dir)
        publish_launch_table(one, "SUBMITTED")
        servers.append(
            one.model_copy(update={"handle": one.handle.model_copy(update={"cluster": name})})
        )
    return launched.model_copy(update={"servers": servers})


@task(
    name="wait-until-ready",
    task_run_name=run_name("wait", "server"),
    **WAITING,
)
def wait_until_ready(
    server: ServerHandle | str,
    timeout: float = 1800.0,
    poll_interval: float = 2.0,
    cluster: ClusterArg = None,
) -> ServerHandle:
    """Block until the server answers ``/health``; a failed or timed-out server is not retried.

    Emits ``vec-inf.server.ready`` or ``vec-inf.server.failed``.

    Args:
        server: The handle ``launch_server`` returned, or the id of a job launched earlier
            (its handle is rebuilt from the job's directory).
        timeout: Seconds to wait for READY before failing.
        poll_interval: Longest pause between two status checks, in seconds.
        cluster: Cluster block (or its name); default: the one the handle names.

    Returns:
        The handle with its base URL.

    Example: ``server = wait_until_ready(server, timeout=900)``
    """
    client = client_for(cluster_of(server, cluster))
    handle = server if isinstance(server, ServerHandle) else client.attach(server)
    try:
        ready = client.wait_until_ready(handle, timeout=timeout, poll_interval=poll_interval)
    except ServerError as error:
        emit_server_event("failed", handle.job_id, handle.model_name, reason=str(error))
        raise
    emit_server_event("ready", ready.job_id, ready.model_name, base_url=ready.base_url)
    logger.info("%s (job %s) is ready at %s", ready.model_name, ready.job_id, ready.base_url)
    return ready


@task(name="collect-metrics", task_run_name=run_name("metrics", "server"), **SHORT_AND_REPEATABLE)
def collect_metrics(server: ServerHandle, cluster: ClusterArg = None) -> ServerMetrics:
    """Scrape the server's metrics once: throughput, latency, request counts.

    The raw Prometheus snapshot is left out: hundreds of series, where a result and its table
    should hold the figures people read.

    Args:
        server: Handle of a READY server.
        cluster: Cluster block (or its name); default: the one the handle names.

    Example: ``metrics = collect_metrics(server)``
    """
    metrics: ServerMetrics = client_for(cluster_of(server, cluster)).metrics(server).metrics
    return metrics


@task(name="shutdown-server", task_run_name=run_name("shutdown", "server"), **SHORT_AND_REPEATABLE)
def shutdown_server(server: ServerHandle | str, cluster: ClusterArg = None) -> list[str]:
    """Cancel a server's job (idempotent: an ended job is not an error) and stop renewing its
    lease; wait up to 30 s (Slurm's default KillWait) until Slurm runs no part of it. A job
    Slurm is still ending then is logged as stopping, not failed. Emits the shutdown event. In
    ``finally`` blocks prefer ``release_server``, which needs no Prefect API.

    Args:
        server: Handle of the server, or a job id (a batch's leader id ends every component).
        cluster: Cluster block (or its name); default: the one the handle names.

    Example: ``shutdown_server(server)``
    """
    client = client_for(cluster_of(server, cluster))
    job_id = server.job_id if isinstance(server, ServerHandle) else str(server)
    settling = cancel_and_settle(client, server)
    if settling:
        logger.info(
            "job %s: cancel sent; Slurm was still ending %s after %.0f s; `status` says "
            "STOPPING until it is gone",
            job_id,
            ", ".join(settling),
            TEARDOWN_TIMEOUT,
        )
    handle = server if isinstance(server, ServerHandle) else None
    model = handle.model_name if handle else client.status(server).model_name
    emit_server_event("shutdown", job_id, model)
    return [job_id]
