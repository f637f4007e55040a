"""cleanup: the reaper. Cancels only what is provably abandoned; reports what it cannot see.

Every server a flow launches carries a lease its process renews, and the job ends by itself
when the lease lapses (SIGKILL, a lost worker machine): no reaper is needed for that. This flow
is the second line, and it must never kill live work, so each live job is judged by
``lifecycle.reaper.decide_reap``:

* cancelled: the lease lapsed (the job side is normally ending it already), or the owning flow
  run is final on *this* run's Prefect server (the same API URL; a loopback URL also needs the
  same host, since every machine has its own localhost);
* reported, never cancelled: an owner on another Prefect server (a CLI run's temporary server,
  a second Prefect server), a run this server does not know, a look-up that failed;
* kept: the owning run is still active, or no flow run launched the job.

Its table (artifact ``vec-inf-cleanup`` and the return value) says for each job what it did and
why.
"""

import logging
import socket
from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.orchestration import get_client as prefect_api_client
from prefect.exceptions import ObjectNotFound

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.lifecycle.evidence import LeaseState, lease_state
from vec_inf_flows.lifecycle.owner import OwnerRecord
from vec_inf_flows.lifecycle.reaper import (
    OwnerRun,
    ReapAction,
    ReapDecision,
    RunLookup,
    decide_reap,
    same_prefect_server,
)
from vec_inf_flows.models import StatusResponse
from vec_inf_flows.presentation import cleanup_table
from vec_inf_flows.results import CleanupAction, CleanupRow
from vec_inf_flows.tasks.blocks import client_for, load_cluster
from vec_inf_flows.tasks.leases import current_flow_run_id, prefect_api_url
from vec_inf_flows.tasks.ownership import FLOW_RUN_LABEL, labels_of, live_jobs
from vec_inf_flows.tasks.teardown import Outcome, release_servers

logger = logging.getLogger("vec_inf_flows")

_ACTIONS: dict[ReapAction, CleanupAction] = {
    ReapAction.KEEP: "kept",
    ReapAction.REPORT: "reported",
    ReapAction.CANCEL: "cancelled",
}


def owner_of(status: StatusResponse) -> OwnerRecord | None:
    """The owner a job records; for jobs launched before owners were recorded, a flow run
    named only by its label (its Prefect server unknown, so it can only be reported)."""
    if not status.job_dir:
        return None
    directory = Path(status.job_dir)
    from vec_inf_flows.jobdir import read_json

    owner = OwnerRecord.from_job_json(read_json(directory / f"{directory.name}.json"))
    if owner is not None:
        return owner
    run = labels_of(status.job_dir).get(FLOW_RUN_LABEL)
    if not run:
        return None
    return OwnerRecord(user="?", host="?", pid=0, started_at=0.0, flow_run_id=run)


def look_up(api: SyncPrefectClient, flow_run_id: str) -> OwnerRun:
    """The owning run as this Prefect server knows it."""
    try:
        run = api.read_flow_run(UUID(flow_run_id))
    except (ObjectNotFound, ValueError):
        return OwnerRun(RunLookup.NOT_FOUND, "not found")
    except Exception as error:  # the API did not answer: say so, cancel nothing
        return OwnerRun(RunLookup.ERROR, type(error).__name__)
    if run.state is None:
        return OwnerRun(RunLookup.ACTIVE, "no state yet")
    name = run.state.name or run.state.type.value
    return OwnerRun(RunLookup.FINAL if run.state.is_final() else RunLookup.ACTIVE, name)


def judge(
    status: StatusResponse, api: SyncPrefectClient, here: str | None, host: str
) -> tuple[ReapDecision, CleanupRow]:
    owner = owner_of(status)
    lease = lease_state(Path(status.job_dir) if status.job_dir else None)
    run = OwnerRun(RunLookup.NOT_ASKED)
    if status.job_dir is None:  # another job index's job, or another user's: not ours to judge
        unseen = ReapDecision(ReapAction.KEEP, "no job record in this job index: owner unknown")
        return unseen, _row(status, None, lease, run, unseen)
    if (
        lease is not LeaseState.LAPSED
        and owner is not None
        and owner.flow_run_id
        and same_prefect_server(owner.prefect_api_url, owner.host, here, host)
    ):
        run = look_up(api, owner.flow_run_id)
    decision = decide_reap(owner, lease, here, run, caller_host=host)
    return decision, _row(status, owner, lease, run, decision)


def _row(
    status: StatusResponse,
    owner: OwnerRecord | None,
    lease: LeaseState,
    run: OwnerRun,
    decision: ReapDecision,
) -> CleanupRow:
    return CleanupRow(
        job_id=status.job_id,
        model_name=status.model_name,
        owner=owner.describe() if owner is not None else "no owner record",
        flow_run_id=owner.flow_run_id if owner is not None else None,
        flow_run_state=run.state_name if run.lookup is not RunLookup.NOT_ASKED else "",
        prefect_api_url=owner.prefect_api_url if owner is not None else None,
        lease=lease.value,
        action=_ACTIONS[decision.action],
        reason=decision.reason,
    )


@flow(name="cleanup-orphaned-servers", flow_run_name="cleanup")
def cleanup(cluster: SlurmCluster | str | None = None, dry_run: bool = False) -> list[CleanupRow]:
    """Cancel live servers that are provably abandoned; report those it cannot judge.

    A server is cancelled only when its lease lapsed or its owning flow run is final on this
    run's own Prefect server. An owner on another Prefect server (a CLI run's temporary one, a
    second server) or unknown here is reported, never cancelled; servers started by hand or by
    other tools are kept. The table says, for each live job, what was done and why.

    Args:
        cluster: Cluster block (or its name) whose jobs are checked; default: this machine's.
        dry_run: Only report what would be cancelled; cancel nothing.
    """
    enable_library_logs()
    where = load_cluster(cluster)
    client = client_for(where)
    here, host, this_run = prefect_api_url(), socket.gethostname(), current_flow_run_id()
    judged: list[tuple[ReapDecision, CleanupRow]] = []
    with prefect_api_client(sync_client=True) as api:
        for status in live_jobs(client):
            decision, row = judge(status, api, here, host)
            if row.flow_run_id is None or row.flow_run_id != this_run:
                judged.append((decision, row))
    doomed = [row.job_id for decision, row in judged if decision.action is ReapAction.CANCEL]
    outcomes = release_servers(doomed, where) if doomed and not dry_run else {}
    rows = [_done(row, outcomes, dry_run) for _, row in judged]
    for row in rows:
        log = logger.warning if row.action != "kept" else logger.info
        log("job %s (%s): %s: %s", row.job_id, row.model_name, row.action, row.reason)
    counts = {action: sum(row.action == action for row in rows) for action in _ACTIONS.values()}
    summary = ", ".join(f"{n} {action}" for action, n in counts.items() if n)
    publish_table(
        "vec-inf-cleanup",
        cleanup_table(rows),
        (f"{len(rows)} live servers: {summary}." if rows else "No live servers.")
        + (" (dry run: nothing cancelled)" if dry_run else ""),
    )
    return rows


def _done(row: CleanupRow, outcomes: dict[str, Outcome], dry_run: bool) -> CleanupRow:
    if row.action != "cancelled":
        return row
    if dry_run:
        return row.model_copy(update={"action": "would cancel"})
    if outcomes.get(row.job_id) is Outcome.FAILED:
        return row.model_copy(update={"action": "cancel failed"})
    return row
