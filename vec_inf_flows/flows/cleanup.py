"""cleanup: cancel servers whose owning flow run has ended (SIGKILL, lost node, lost API).

A flow's own ``finally`` cannot run when its process is killed outright; this flow, scheduled
every few minutes, is the safety net. It touches only jobs marked with a flow-run id, so servers
started by hand or by other tools are never cancelled.
"""

import logging
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client as prefect_api_client
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run as runtime_flow_run

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.flows._lifecycle import enable_library_logs
from vec_inf_flows.tasks import (
    FLOW_RUN_LABEL,
    get_client,
    labels_of,
    live_jobs,
    load_cluster,
    release_server,
)

logger = logging.getLogger("vec_inf_flows")


def _ended(flow_run_id: str) -> tuple[bool, str]:
    with prefect_api_client(sync_client=True) as api:
        try:
            run = api.read_flow_run(UUID(flow_run_id))
        except (ObjectNotFound, ValueError):
            return True, "run not found"
    if run.state is None:
        return False, "no state"
    return run.state.is_final(), run.state.name or run.state.type.value


@flow(name="cleanup-orphaned-servers")
def cleanup(cluster_block: str | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Find live servers launched by flow runs that have ended, and shut them down.

    With ``dry_run`` nothing is cancelled; the rows say what would be.
    """
    enable_library_logs()
    cluster = load_cluster(cluster_block)
    client = get_client(cluster)
    this_run = str(runtime_flow_run.id or "")
    rows: list[dict[str, Any]] = []
    for status in live_jobs(client):
        owner = labels_of(status.job_dir).get(FLOW_RUN_LABEL)
        if not owner or owner == this_run:
            continue
        ended, state = _ended(owner)
        if not ended:
            continue
        action = "would cancel" if dry_run else "cancelled"
        if not dry_run and not release_server(status.job_id, cluster):
            action = "cancel failed"
        logger.warning(
            "job %s (%s): owner run %s is %s: %s",
            status.job_id,
            status.model_name,
            owner,
            state,
            action,
        )
        rows.append(
            {
                "job_id": status.job_id,
                "model_name": status.model_name,
                "flow_run_id": owner,
                "flow_run_state": state,
                "action": action,
            }
        )
    publish_table(
        "vec-inf-cleanup",
        rows or [{"job_id": None, "action": "nothing to clean up"}],
        "Servers whose owning flow run had ended." + (" (dry run)" if dry_run else ""),
    )
    return rows
