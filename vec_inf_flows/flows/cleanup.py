"""cleanup: cancel servers whose owning flow run has ended (SIGKILL, lost node, lost API).

A flow's own ``finally`` cannot run when its process is killed outright; this flow, scheduled
every few minutes, is the safety net. It touches only jobs marked with a flow-run id, so servers
started by hand or by other tools are never cancelled.
"""

import logging
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client as prefect_api_client
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run as runtime_flow_run

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.presentation import cleanup_table
from vec_inf_flows.results import CleanupAction, CleanupRow
from vec_inf_flows.tasks.blocks import client_for, load_cluster
from vec_inf_flows.tasks.ownership import FLOW_RUN_LABEL, labels_of, live_jobs, release_server

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


@flow(name="cleanup-orphaned-servers", flow_run_name="cleanup")
def cleanup(cluster: SlurmCluster | str | None = None, dry_run: bool = False) -> list[CleanupRow]:
    """Find live servers launched by flow runs that have ended, and shut them down.

    Only jobs that record a flow run's id are considered: servers started by hand or by other
    tools are never touched.

    Args:
        cluster: Cluster block (or its name) whose jobs are checked; default: this machine's.
        dry_run: Only report what would be cancelled; cancel nothing.
    """
    enable_library_logs()
    where = load_cluster(cluster)
    client = client_for(where)
    this_run = str(runtime_flow_run.id or "")
    rows: list[CleanupRow] = []
    for status in live_jobs(client):
        owner = labels_of(status.job_dir).get(FLOW_RUN_LABEL)
        if not owner or owner == this_run:
            continue
        ended, state = _ended(owner)
        if not ended:
            continue
        action: CleanupAction = "would cancel" if dry_run else "cancelled"
        if not dry_run and not release_server(status.job_id, where):
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
            CleanupRow(
                job_id=status.job_id,
                model_name=status.model_name,
                flow_run_id=owner,
                flow_run_state=state,
                action=action,
            )
        )
    publish_table(
        "vec-inf-cleanup",
        cleanup_table(rows),
        (
            f"{len(rows)} servers whose owning flow run had ended."
            if rows
            else "Nothing to clean up."
        )
        + (" (dry run)" if dry_run else ""),
    )
    return rows
