"""``ReplicaGroup``: N independent jobs serving one model, addressed by one group id.

Every replica is an ordinary server launched through ``VecInfClient.launch`` (so it gets what
every launch gets: the job directory, the index, the owner's labels and record, the plan's
lease), labelled with the group id; the router job carries the same lease.
The group record lists them (and the router, when there is one); ``status`` and ``shutdown``
take the group id where they take a job id.
"""

from __future__ import annotations

import contextlib
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
from vec_inf_flows.replicas.budget import SharedBudget
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
    shared: SharedBudget | None = None  # a budget shared with other groups (a flow's models)
    # A watcher thread may be launching a replacement while the caller shuts the group down:
    # launching checks and shutting down marks "ended" under this lock, so none slips past.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ------------------------------------------------------------------ making one
    @classmethod
    def launch(
        cls,
        client: VecInfClient,
        plan: ReplicaPlan,
        shared: SharedBudget | None = None,
        first: int | None = None,
    ) -> ReplicaGroup:
        """Submit the replicas the budget allows (and the router); returns once they are queued.

        ``first``: how many to submit now (an elastic group starts with what its backlog
        needs); default ``plan.replicas``. Everything that can be refused is checked before the
        first job is queued; if a later submission fails, the jobs already queued are cancelled
        before the error is raised.
        """
        from vec_inf_flows.catalog.resolve import resolve
        from vec_inf_flows.replicas.router_job import check_router_installed

        spec = resolve(plan.model_name, plan.options)
        plan.budget.check(gpus_per_replica(spec))
        if shared is not None:
            shared.limits.check(gpus_per_replica(spec))
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
        group = cls(client, record, plan, spec, shared)
        try:
            for active in range(plan.replicas if first is None else min(first, plan.replicas)):
                if not group.claim(active):
                    break
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

    def claim(self, active: int) -> bool:
        """Reserve room for one more replica while ``active`` hold or await resources: in the
        group's own budget and, atomically, in the shared one."""
        if self.room(active) <= 0:
            return False
        if self.shared is None:
            return True
        return self.shared.claim(self.group_id, active, gpus_per_replica(self.spec))

    def settle(self, active: int) -> None:
        """Tell the shared budget what the group holds now (replicas that ended give back)."""
        if self.shared is not None:
            self.shared.settle(self.group_id, active, gpus_per_replica(self.spec))

    def launch_replica(self, replaces: str | None = None) -> Member:
        labels = {**self.plan.labels, GROUP_LABEL: self.group_id}
        with self._lock:
            if self.record.ended_at is not None:
                raise ServerError(f"Replica group {self.group_id} is shut down.")
            launched = self.client.launch(
                self.plan.model_name,
                self.plan.options,
                api_key=self.plan.api_key,
                labels=labels,
                lease=self.plan.lease,
                owner=self.plan.owner,
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
            member = launch_router(
                self.client,
                self.record,
                self.spec,
                self.plan.router,
                self.plan.labels,
                lease=self.plan.lease,
                owner=self.plan.owner,
            )
            self._add(member)
        return member

    def release_leases(self) -> None:
        """Hand every member over to its time limit (or ``shutdown``): no lease enforced."""
        from vec_inf_flows.replicas.router_job import client_for

        if self.plan.lease is None:
            return
        for member in self.record.members:
            with contextlib.suppress(VecInfError):  # an ended member has nothing to release
                client_for(self.client, member.backend).release_lease(member.job_id)

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
        try:
            for backend, members in by_backend.items():
                client = client_for(self.client, backend)
                ids = _still_running(client, [member.job_id for member in members])
                if ids:
                    stopped += client.shutdown(ids)  # returns once Slurm runs none of them
        finally:  # the room is free for other groups only now (or the stop failed: no deadlock)
            if self.shared is not None:
                self.shared.forget(self.group_id)
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
