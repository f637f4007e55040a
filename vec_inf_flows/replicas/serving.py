"""A replica group as a run sends work to it: the group, its watcher, its key and its backlog.

This is what the Prefect layer carries where it would carry one server's handle: the workload
task runs each chunk on the group's live membership (work starts on the first READY replica,
the others join as they come, a dead one is replaced), the elastic policy reads the backlog the
chunks report, and the run's result gets the group's ``ReplicaSummary``. Prefect-free.
"""

from __future__ import annotations

import logging
import time

from pydantic import SecretStr

from vec_inf_flows.errors import ServerError, VecInfError
from vec_inf_flows.handle import ServerHandle, max_concurrent_sequences
from vec_inf_flows.replicas.elastic import Backlog, ElasticPolicy
from vec_inf_flows.replicas.group import ReplicaGroup
from vec_inf_flows.replicas.status import GroupStatus, wait_until_usable
from vec_inf_flows.replicas.summary import Outcome, ReplicaJob, ReplicaSummary
from vec_inf_flows.replicas.watcher import EventHook, GroupWatcher, ReplicaEvent
from vec_inf_flows.server.metrics import ServerMetrics
from vec_inf_flows.workload.membership import Membership

log = logging.getLogger("vec_inf_flows.replicas")


class ServingGroup:
    """One model's replica group in a run (a plain object: Prefect passes it to tasks as is)."""

    def __init__(
        self,
        group: ReplicaGroup,
        *,
        elastic: ElasticPolicy | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.group = group
        self.backlog = Backlog() if elastic is not None else None
        self._on_event = on_event
        self.watcher = GroupWatcher(group, self._record, elastic=elastic, backlog=self.backlog)
        self.elastic = elastic is not None
        self.endpoint: str | None = None
        self.cluster: str | None = None  # the cluster block's name, for handles

    # ------------------------------------------------------------------ as a server
    @property
    def job_id(self) -> str:
        """The group id: what task-run names, rows and ``status`` show for it."""
        return self.group.group_id

    @property
    def model_name(self) -> str:
        return self.group.spec.model_name

    @property
    def max_concurrent_sequences(self) -> int:
        """What one replica runs at once."""
        spec = self.group.spec
        return max_concurrent_sequences(spec.engine, spec.engine_args)

    def bearer(self) -> str | None:
        key: SecretStr | None = self.group.plan.api_key
        return key.get_secret_value() if key is not None else None

    def handle(self) -> ServerHandle:
        """The group as one server: its id, the endpoint (when a router runs), no key."""
        return ServerHandle(
            job_id=self.job_id,
            model_name=self.model_name,
            base_url=self.endpoint,
            max_concurrent_sequences=self.max_concurrent_sequences,
            cluster=self.cluster,
            job_dir=self.group.record.directory,
        )

    def endpoint_handle(self) -> ServerHandle:
        """A handle a client of the endpoint can use: the router's URL and the replicas' key."""
        if self.endpoint is None:
            raise ServerError(
                f"Replica group {self.job_id} has no endpoint: a workload callable needs the "
                "router (router='job' or 'local')."
            )
        return self.handle().model_copy(update={"api_key": self.group.plan.api_key})

    # ------------------------------------------------------------------ work
    def membership(self, interval: float = 1.0) -> Membership:
        return self.watcher.changes(interval=interval)

    def expect(self, key: str, total: int) -> None:
        """Announce a dataset the group will serve (an elastic group sizes itself by it)."""
        if self.backlog is not None:
            self.backlog.expect(key, total)

    def note_progress(self, key: str, done: int, total: int | None) -> None:
        if self.backlog is not None:
            self.backlog.progress(key, done, total)

    def wait_for_first(self, timeout: float, poll_interval: float = 2.0) -> str:
        """Block until one replica is READY (never for all); its job id.

        ``timeout`` counts from when a replica is queued: a group waiting for room in a budget
        shared with other models has asked Slurm for nothing yet. Raises ``ServerError`` when
        no replica is left and none may be launched, or on the timeout.
        """
        delay = min(0.5, poll_interval)
        queued_since: float | None = None
        while True:
            watcher = self.watcher
            watcher.poll()
            ready = [job_id for job_id in watcher.serving if job_id in watcher.ready]
            if ready:
                return ready[0]
            if watcher.exhausted:
                reasons = "; ".join(f"{job}: {why}" for job, why in watcher.gone.items())
                raise ServerError(
                    f"Replica group {self.job_id}: no replica started ({reasons or 'none left'})."
                )
            if watcher.active and queued_since is None:
                queued_since = time.monotonic()
            if queued_since is not None and time.monotonic() - queued_since > timeout:
                raise ServerError(
                    f"Replica group {self.job_id}: no replica READY after {timeout:.0f} s."
                )
            time.sleep(delay)
            delay = min(delay * 2, poll_interval)

    def wait_for_endpoint(self, timeout: float, poll_interval: float = 2.0) -> GroupStatus:
        """Block until the router sends traffic to a replica; remembers the endpoint."""
        status = wait_until_usable(self.group, timeout, poll_interval)
        self.endpoint = status.endpoint
        return status

    # ------------------------------------------------------------------ results
    def summary(self) -> ReplicaSummary:
        watcher = self.watcher
        jobs = []
        for member in self.group.record.replica_members:
            job_id = member.job_id
            detail = watcher.gone.get(job_id)
            outcome: Outcome
            if job_id in watcher.releasing:
                outcome, detail = "released", watcher.releasing_reason.get(job_id)
            elif detail is not None:
                outcome = "lost"
            elif job_id in watcher.ready:
                outcome = "served"
            else:
                outcome = "never ready"
            jobs.append(
                ReplicaJob(
                    job_id=job_id,
                    outcome=outcome,
                    base_url=watcher.ready.get(job_id),
                    replaces=member.replaces,
                    detail=detail,
                )
            )
        router = self.group.record.router
        return ReplicaSummary(
            group_id=self.job_id,
            replicas=self.group.plan.replicas,
            elastic=self.elastic,
            peak=watcher.peak_serving,
            jobs=jobs,
            endpoint=self.endpoint,
            router_job_id=router.job_id if router else None,
        )

    def metrics(self) -> ServerMetrics:
        """The replicas still serving, read as one server (counters added up)."""
        from vec_inf_flows.server.http import fetch_metrics_text
        from vec_inf_flows.server.metrics import derive, merge_snapshots, parse_metrics

        watcher = self.watcher
        urls = [watcher.ready[j] for j in watcher.serving if j in watcher.ready]
        snapshots = []
        for url in urls:
            try:
                snapshots.append(parse_metrics(fetch_metrics_text(url)))
            except VecInfError as error:
                log.warning("no metrics from %s: %s", url, error)
        if not snapshots:
            raise ServerError(f"Replica group {self.job_id}: no replica answered /metrics.")
        return derive(merge_snapshots(snapshots))

    # ------------------------------------------------------------------ the end
    def shutdown(self, reason: str = "the run ended") -> list[str]:
        """Launch nothing more and stop every member (replicas and router); idempotent."""
        self.watcher.stop()
        return self.group.shutdown(reason)

    def member_ids(self) -> list[str]:
        return [member.job_id for member in self.group.record.members]

    def _record(self, event: ReplicaEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
