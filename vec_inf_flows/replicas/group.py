"""``ReplicaGroup``: N independent jobs serving one model, addressed by one group id.

Every replica is an ordinary server launched through ``VecInfClient.launch`` (so it gets what
every launch gets: the job directory, the index, the owner's labels), labelled with the group id.
The group record lists them (and the router, when there is one); ``status`` and ``shutdown``
take the group id where they take a job id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import ServerError, VecInfError
from vec_inf_flows.models import StatusResponse
from vec_inf_flows.replicas import record as records
from vec_inf_flows.replicas.ids import new_group_id
from vec_inf_flows.replicas.plan import ReplicaPlan
from vec_inf_flows.replicas.record import GROUP_LABEL, GroupRecord, Member, Role
from vec_inf_flows.spec import LaunchSpec
from vec_inf_flows.workload.concurrency import max_num_seqs

log = logging.getLogger("vec_inf_flows.replicas")


@dataclass
class ReplicaGroup:
    client: VecInfClient
    record: GroupRecord
    plan: ReplicaPlan
    spec: LaunchSpec
    # A watcher thread may be launching a replacement while the caller shuts the group down:
    # launching checks and shutting down marks "ended" under this lock, so none slips past.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ------------------------------------------------------------------ making one
    @classmethod
    def launch(cls, client: VecInfClient, plan: ReplicaPlan) -> ReplicaGroup:
        """Submit the replicas the budget allows (and the router); returns once they are queued.

        Everything that can be refused is checked before the first job is queued; if a later
        submission fails, the jobs already queued are cancelled before the error is raised.
        """
        from vec_inf_flows.catalog.resolve import resolve
        from vec_inf_flows.replicas.router_job import check_router_installed

        spec = resolve(plan.model_name, plan.options)
        plan.budget.check(gpus_per_replica(spec))
        if plan.router.place != "none":
            check_router_installed(plan.router.python or spec.python)
        group_id = new_group_id()
        record = GroupRecord(
            group_id=group_id,
            model_name=spec.model_name,
            replicas=plan.replicas,
            directory=str(records.group_directory(spec.log_dir, group_id)),
        )
        Path(record.directory).mkdir(parents=True, exist_ok=True, mode=0o755)
        record.save()
        records.register(client.state_dir, record)
        group = cls(client, record, plan, spec)
        try:
            for _ in range(min(plan.replicas, group.room())):
                group.launch_replica()
            if plan.router.place != "none":
                group.launch_router()
        except BaseException as error:
            group.shutdown(f"launch failed: {error}")
            raise
        return group

    @classmethod
    def load(
        cls, client: VecInfClient, group_id: str, plan: ReplicaPlan | None = None
    ) -> ReplicaGroup:
        """The group behind an id (as ``status`` and ``shutdown`` find it)."""
        from vec_inf_flows.catalog.resolve import resolve

        record = records.load(client.state_dir, group_id)
        plan = plan or ReplicaPlan(model_name=record.model_name, replicas=record.replicas)
        try:
            spec = resolve(record.model_name, plan.options)
        except VecInfError:  # the catalog changed since: status and shutdown still work
            spec = _placeholder_spec(record)
        return cls(client, record, plan, spec)

    # ------------------------------------------------------------------ members
    @property
    def group_id(self) -> str:
        return self.record.group_id

    @property
    def max_concurrency(self) -> int | None:
        """Each replica's ``--max-num-seqs``: what the runner keeps in flight per replica."""
        return max_num_seqs(self.spec.engine_args)

    def replica_ids(self) -> list[str]:
        return [member.job_id for member in self.record.replica_members]

    def room(self, active: int = 0) -> int:
        return self.plan.budget.room(active, gpus_per_replica(self.spec))

    def launch_replica(self, replaces: str | None = None) -> Member:
        labels = {GROUP_LABEL: self.group_id}
        with self._lock:
            if self.record.ended_at is not None:
                raise ServerError(f"Replica group {self.group_id} is shut down.")
            launched = self.client.launch(
                self.plan.model_name, self.plan.options, api_key=self.plan.api_key, labels=labels
            )
            member = Member(
                job_id=launched.job_id,
                backend=getattr(self.client.backend, "name", "slurm"),
                job_dir=launched.job_dir,
                replaces=replaces,
            )
            self._add(member)
        log.info("group %s: launched replica %s", self.group_id, member.job_id)
        return member

    def launch_router(self) -> Member:
        from vec_inf_flows.replicas.router_job import launch_router

        with self._lock:
            member = launch_router(self.client, self.record, self.spec, self.plan.router)
            self._add(member)
        return member

    def _add(self, member: Member) -> None:
        self.record.members.append(member)
        self.record.save()

    # ------------------------------------------------------------------ status, shutdown
    def statuses(self) -> tuple[list[StatusResponse], StatusResponse | None]:
        """Every replica's status (one scheduler query) and the router's."""
        replicas = self.client.statuses(self.replica_ids()) if self.replica_ids() else []
        router = self.record.router
        if router is None:
            return replicas, None
        from vec_inf_flows.replicas.router_job import client_for

        return replicas, client_for(self.client, router.backend).status(router.job_id)

    def shutdown(self, reason: str = "shut down on request") -> list[str]:
        """Stop every member still running (replicas and router); idempotent."""
        from vec_inf_flows.replicas.router_job import client_for

        with self._lock:
            if self.record.ended_at is None:
                self.record.ended_at = time.time()
                self.record.ended_because = reason
                self.record.save()  # the router sees it and stops, even if its cancel fails
            members = list(self.record.members)
        stopped: list[str] = []
        by_backend: dict[str, list[Member]] = {}
        for member in members:
            by_backend.setdefault(member.backend, []).append(member)
        for backend, members in by_backend.items():
            client = client_for(self.client, backend)
            ids = _still_running(client, [member.job_id for member in members])
            if ids:
                stopped += client.shutdown(ids)
        return stopped


def gpus_per_replica(spec: LaunchSpec) -> int:
    return spec.resources.gpus_per_node * spec.resources.num_nodes


def _still_running(client: VecInfClient, ids: Sequence[str]) -> list[str]:
    """Members not yet ended: a replica that died keeps its FAILED status, not SHUTDOWN."""
    try:
        return [status.job_id for status in client.statuses(ids) if not status.terminal]
    except VecInfError as error:
        log.warning("cannot tell which members still run (%s); stopping them all", error)
        return list(ids)


def _placeholder_spec(record: GroupRecord) -> LaunchSpec:
    from vec_inf_flows.spec import SlurmResources

    return LaunchSpec(
        model_name=record.model_name,
        model_family=record.model_name,
        model_type="LLM",
        vocab_size=0,
        resources=SlurmResources(time="00:01:00", gpus_per_node=0),
        engine="vllm",
        model_path="",
        log_dir=str(Path(record.directory).parent.parent),
    )


__all__ = ["ReplicaGroup", "Role", "gpus_per_replica"]
