"""What every flow shares: knowing which servers it launched, and tearing exactly those down.

The ``finally`` of each flow is the primary guarantee (it runs on success, exceptions, SIGINT,
SIGTERM and cancellation). The crash and cancellation hooks are the second line: they may run
in another process (the runner), so they find the run's servers by the owner mark the launch
task writes into each job, not from memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.tasks import (
    FLOW_RUN_LABEL,
    get_client,
    labels_of,
    live_jobs,
    load_cluster,
    release_server,
)

logger = logging.getLogger("vec_inf_flows")

TEARDOWN_TIMEOUT = 30.0  # Slurm's KillWait after SIGTERM is 30 s by default: stay within it


class LaunchedServers:
    """Job ids this flow run launched and has not shut down yet (thread-safe).

    Once closed, a launch that finishes late (in a worker thread) is shut down at once instead
    of being left running after teardown.
    """

    def __init__(self, cluster: SlurmCluster | None) -> None:
        self.cluster = cluster
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

    def release(self, job_id: str) -> None:
        with self._lock:
            if job_id not in self._jobs:
                return
            self._jobs.remove(job_id)
        release_server(job_id, self.cluster, TEARDOWN_TIMEOUT)

    def release_all(self) -> None:
        with self._lock:
            self._closed = True
            jobs, self._jobs = self._jobs, []
        for job_id in jobs:
            release_server(job_id, self.cluster, TEARDOWN_TIMEOUT)

    @property
    def job_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)


@contextmanager
def launched_servers(cluster: SlurmCluster | None) -> Iterator[LaunchedServers]:
    """Yield the registry; on the way out, whatever the reason, shut down what it holds."""
    servers = LaunchedServers(cluster)
    try:
        yield servers
    finally:
        servers.release_all()


def teardown_hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """on_crashed / on_cancellation: shut down live jobs marked as launched by this run."""
    try:
        cluster = load_cluster(flow_run.parameters.get("cluster_block"))
        client = get_client(cluster)
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
        release_server(job_id, cluster, TEARDOWN_TIMEOUT)


class _InsideARun(logging.Filter):
    """Pass only records logged inside a flow or task run: the same process may use the client
    outside any run afterwards (a notebook, the CLI), and those records have no run to go to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def enable_library_logs(level: int = logging.INFO) -> None:
    """Send the ``vec_inf_flows`` logger to the run's logs (and set its level, which Prefect's
    PREFECT_LOGGING_EXTRA_LOGGERS does not do)."""
    library = logging.getLogger("vec_inf_flows")
    if library.level == logging.NOTSET or library.level > level:
        library.setLevel(level)
    if not any(isinstance(handler, APILogHandler) for handler in library.handlers):
        handler = APILogHandler()
        handler.addFilter(_InsideARun())
        library.addHandler(handler)
