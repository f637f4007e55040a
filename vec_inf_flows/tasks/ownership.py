"""Which servers a flow run owns, and tearing exactly those down, whatever ends the run.

Every job launched from a flow carries two labels in its job record: the flow run's id (the
crash and cancellation hooks find a run's servers by it, from any process) and the launching
task run's key (a retried launch adopts the job its earlier attempt submitted instead of
starting a second one); its owner record and lease come from ``tasks.leases``. A flow's
``finally`` releases what it launched through ``LaunchedServers`` with plain client calls
(``tasks.teardown``), so teardown needs no Prefect API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.jobdir import read_json
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.tasks.blocks import client_for, load_cluster
from vec_inf_flows.tasks.leases import DEFAULT_LEASE, current_flow_run_id
from vec_inf_flows.tasks.teardown import (
    TEARDOWN_TIMEOUT,
    release_server,
    release_servers,
)

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.models import StatusResponse

logger = logging.getLogger("vec_inf_flows")

FLOW_RUN_LABEL = "prefect.flow-run-id"
LAUNCH_KEY_LABEL = "vec-inf-flows.launch-key"


def owner_labels(launch_key: str | None = None) -> dict[str, str]:
    """Labels recorded in the job's JSON: which flow run launched it, and by which attempt."""
    labels: dict[str, str] = {}
    flow_run_id = current_flow_run_id()
    if flow_run_id:
        labels[FLOW_RUN_LABEL] = flow_run_id
    if launch_key:
        labels[LAUNCH_KEY_LABEL] = launch_key
    return labels


def labels_of(job_dir: str | None) -> dict[str, str]:
    """The labels a job was launched with (empty for jobs started without them)."""
    if not job_dir:
        return {}
    directory = Path(job_dir)
    config = read_json(directory / f"{directory.name}.json")
    labels = (config or {}).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def live_jobs(client: VecInfClient) -> list[StatusResponse]:
    return [status for status in client.statuses() if not status.terminal]


def find_launched(client: VecInfClient, launch_key: str) -> StatusResponse | None:
    """The live job an earlier attempt of this launch submitted, if any."""
    for status in live_jobs(client):
        if labels_of(status.job_dir).get(LAUNCH_KEY_LABEL) == launch_key:
            return status
    return None


class LaunchedServers:
    """Job ids this flow run launched and has not shut down yet (thread-safe), and the lease
    every launch into it carries.

    Once closed, a launch that finishes late (in a worker thread) is shut down at once instead
    of being left running after teardown.
    """

    def __init__(self, cluster: SlurmCluster | None, lease: LeasePolicy = DEFAULT_LEASE) -> None:
        self.cluster = cluster
        self.lease = lease
        self._jobs: list[str] = []
        self._lock = threading.Lock()
        self._closed = False

    def add(self, job_id: str) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._jobs.append(job_id)
        if closed:
            logger.warning("job %s was launched after teardown; shutting it down", job_id)
            release_server(job_id, self.cluster, TEARDOWN_TIMEOUT)

    def forget(self, job_id: str) -> None:
        """The job was shut down another way (the shutdown task): nothing left to do for it."""
        with self._lock:
            if job_id in self._jobs:
                self._jobs.remove(job_id)

    def owns(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._jobs

    def release_all(self) -> None:
        with self._lock:
            self._closed = True
            jobs, self._jobs = self._jobs, []
        if jobs:  # all at once: teardown takes one server's time, not the sum
            release_servers(jobs, self.cluster, TEARDOWN_TIMEOUT)


@contextmanager
def launched_servers(
    cluster: SlurmCluster | None, lease: LeasePolicy = DEFAULT_LEASE
) -> Iterator[LaunchedServers]:
    """Yield the registry; on the way out, whatever the reason, shut down what it holds."""
    servers = LaunchedServers(cluster, lease)
    try:
        yield servers
    finally:
        servers.release_all()


def teardown_hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """on_crashed / on_cancellation: shut down live jobs marked as launched by this run.

    Hooks may run in another process (the runner), so the run's servers are found by their
    label, and its cluster from the run's parameters as the API stored them.
    """
    try:
        cluster = cluster_from_parameters(flow_run.parameters)
        client = client_for(cluster)
        owned = [
            status.job_id
            for status in live_jobs(client)
            if labels_of(status.job_dir).get(FLOW_RUN_LABEL) == str(flow_run.id)
        ]
    except Exception as error:
        logger.error("teardown hook for run %s could not list its jobs: %s", flow_run.id, error)
        return
    for job_id in owned:
        logger.warning("run %s ended %s; shutting down job %s", flow_run.id, state.name, job_id)
    if owned:
        release_servers(owned, cluster, TEARDOWN_TIMEOUT)


def cluster_from_parameters(parameters: Mapping[str, Any]) -> SlurmCluster | None:
    """The ``cluster`` parameter of a stored flow run: a block name, a reference to a saved
    block (picked in the UI), or the block's fields (an in-process run stores an object's)."""
    value = parameters.get("cluster")
    if isinstance(value, str):
        return load_cluster(value)
    if isinstance(value, dict) and isinstance(value.get("$ref"), dict):
        return cast(SlurmCluster, SlurmCluster.load_from_ref(value["$ref"]))
    if isinstance(value, dict):
        return SlurmCluster.model_validate(value)
    return None
