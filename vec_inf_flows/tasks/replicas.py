"""Tasks for a replica group's life in a flow: launch it, wait for its first READY replica (never
for all), shut it all down. Each is a thin task over ``vec_inf_flows.replicas``.

The group travels between them as a ``ServingGroup`` (it holds the key and live state), so no
result is persisted. ``release_group`` is the plain call for ``finally`` blocks: it needs no
Prefect API and never raises.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prefect import task

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.errors import ServerError
from vec_inf_flows.events import emit_server_event
from vec_inf_flows.presentation import group_launch_table
from vec_inf_flows.replicas.budget import SharedBudget
from vec_inf_flows.replicas.elastic import ElasticPolicy
from vec_inf_flows.replicas.group import ReplicaGroup
from vec_inf_flows.replicas.plan import ReplicaPlan
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.replicas.watcher import EventHook
from vec_inf_flows.tasks.blocks import ClusterArg, client_for, load_cluster
from vec_inf_flows.tasks.naming import run_name
from vec_inf_flows.tasks.retries import SHORT_AND_REPEATABLE, SUBMISSION, WAITING

logger = logging.getLogger("vec_inf_flows")


# A group's launch is a submission like a server's: retried only after a fault that left no job.
@task(name="launch-replica-group", task_run_name=run_name("launch-group", "plan"), **SUBMISSION)
def launch_replica_group(
    plan: ReplicaPlan,
    cluster: ClusterArg = None,
    shared: SharedBudget | None = None,
    elastic: ElasticPolicy | None = None,
    on_event: EventHook | None = None,
) -> ServingGroup:
    """Submit a replica group (and its router); returns once its jobs are queued.

    A failed submission cancels what the group had queued before raising, so a retry (only
    after a transient Slurm fault) starts from nothing. An elastic group starts with
    ``elastic.min_replicas`` replicas and grows with its backlog. Publishes the group's table as
    the artifact ``vec-inf-group-<model>``.

    Args:
        plan: The model, how many replicas, their launch options, key, budget and router.
        cluster: Cluster block (or its saved name) whose client submits the jobs.
        shared: A budget shared with the flow's other groups (max GPUs / replicas at once).
        elastic: Size the group by its backlog, up to ``plan.replicas``.
        on_event: Called with every replica event (READY, LOST, LAUNCHED, RELEASING ...).

    Example: ``group = launch_replica_group(ReplicaPlan(model_name="M", replicas=4))``
    """
    client = client_for(load_cluster(cluster))
    first = elastic.min_replicas if elastic is not None else None
    group = ReplicaGroup.launch(client, plan, shared, first=first)
    for member in group.record.members:
        emit_server_event("submitted", member.job_id, plan.model_name, job_dir=member.job_dir)
    publish_table(
        f"vec-inf-group-{plan.model_name}",
        group_launch_table(group.record),
        f"Replica group {group.group_id} of {plan.model_name} at launch.",
    )
    logger.info(
        "launched replica group %s of %s: jobs %s",
        group.group_id, plan.model_name, ", ".join(m.job_id for m in group.record.members),
    )  # fmt: skip
    return ServingGroup(group, elastic=elastic, on_event=on_event)


@task(
    name="wait-first-replica",
    task_run_name=run_name("wait", "group"),
    **WAITING,
)
def wait_for_first_replica(
    group: ServingGroup, timeout: float = 1800.0, poll_interval: float = 2.0, endpoint: bool = False
) -> str:
    """Block until one replica is READY (the others join the work as they come).

    Args:
        group: The group ``launch_replica_group`` returned.
        timeout: Seconds to wait once a replica is queued.
        poll_interval: Longest pause between two status checks, in seconds.
        endpoint: Also wait until the router sends traffic to a replica.

    Returns:
        The job id of the first READY replica.
    """
    try:
        first = group.wait_for_first(timeout, poll_interval)
        if endpoint:
            group.wait_for_endpoint(timeout, poll_interval)
    except ServerError as error:
        emit_server_event("failed", group.job_id, group.model_name, reason=str(error))
        raise
    url = group.watcher.ready.get(first)
    emit_server_event("ready", first, group.model_name, base_url=url)
    logger.info("%s: replica %s of %s is ready at %s", group.model_name, first, group.job_id, url)
    if group.endpoint:
        logger.info("%s: one endpoint for the group at %s", group.model_name, group.endpoint)
    return first


@task(
    name="shutdown-replica-group",
    task_run_name=run_name("shutdown", "group"),
    **SHORT_AND_REPEATABLE,
)
def shutdown_replica_group(group: ServingGroup, reason: str = "the run ended") -> list[str]:
    """Stop every member of the group (replicas and router); idempotent.

    Args:
        group: The group to stop.
        reason: Recorded in the group (``status`` of the group id shows it).
    """
    stopped = group.shutdown(reason)
    emit_server_event("shutdown", group.job_id, group.model_name)
    return stopped


def release_group(group: ServingGroup, reason: str, timeout: float = 30.0) -> bool:
    """Stop the group with plain client calls: no Prefect API, bounded time, never raises."""
    outcome: dict[str, Any] = {}

    def stop() -> None:
        try:
            group.shutdown(reason)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=stop, name=f"release-{group.job_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or "error" in outcome:
        logger.error("shutdown of group %s failed: %s", group.job_id, outcome.get("error"))
        return False
    logger.info("shut down replica group %s", group.job_id)
    return True
