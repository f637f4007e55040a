"""The leases of a flow-run process: one keeper renews every server the process launched.

Every server a flow or a task launches carries a lease and records its owner: this run's
Prefect API URL and flow run id. The keeper is one per process, not one per task run or client
object: it lives exactly as long as the process that runs the flow (the CLI's ``run``, a
worker's flow-run subprocess, your own Python session), serves ``evaluate``'s worker threads
too, and dies with the process. That is the point: when the process is SIGKILLed or its machine
is lost, nobody renews, and each of its servers stops by itself once the lease lapses (the job
side enforces it: ``scripts/jobwatch.py``). Teardown drops a server's lease as it cancels it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from prefect.runtime import flow_run as runtime_flow_run

from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
from vec_inf_flows.lifecycle.owner import OwnerRecord

DEFAULT_LEASE = LeasePolicy()  # renewed every 60 s, lapses after 300 s

_keeper: LeaseKeeper | None = None
_keeper_lock = threading.Lock()


def process_leases() -> LeaseKeeper:
    """The keeper of this process (made on first use; its thread dies with the process)."""
    global _keeper
    with _keeper_lock:
        if _keeper is None:
            _keeper = LeaseKeeper()
        return _keeper


def current_flow_run_id() -> str | None:
    run_id = runtime_flow_run.id
    return str(run_id) if run_id else None


def prefect_api_url() -> str | None:
    """The API this process reports to (a CLI run's temporary server included)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def run_owner() -> OwnerRecord:
    """This process, and the flow run it is running (if any) on its Prefect server."""
    return OwnerRecord.current(prefect_api_url=prefect_api_url(), flow_run_id=current_flow_run_id())


def hold_adopted(handle: ServerHandle, lease: LeasePolicy) -> None:
    """A job an earlier attempt of this task submitted: renew its lease from here on (the
    earlier attempt ran in this process, so normally it is held already)."""
    if handle.job_dir is None:
        return
    keeper = process_leases()
    if Path(handle.job_dir) not in keeper.held:
        keeper.hold(handle.job_dir, lease)
