"""VecInfClient: the Prefect-free Python API (launch, status, metrics, shutdown, wait).

It only composes the layers below it: the catalog resolves a launch spec, the renderer writes the
script, the backend submits it, and status is decided from one bulk scheduler query plus the
job's own files and a health check.

Module-level imports are the ones ``status`` needs; ``status`` must start in tens of
milliseconds, so pydantic, YAML and the launch machinery load inside the methods that use them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import ConfigError, JobNotFoundError, ServerError
from vec_inf_flows.jobfiles import JobFiles
from vec_inf_flows.jobs import JobId, JobRecord
from vec_inf_flows.lifecycle.evidence import DEFAULT_HEALTH_GRACE
from vec_inf_flows.lifecycle.journal import HeldJobJournal, abandon_launch, add_note
from vec_inf_flows.origin import Recognition, recognise
from vec_inf_flows.server_status import ServerStatus, StatusResponse
from vec_inf_flows.status_query import job_files, query_statuses

if TYPE_CHECKING:
    from pydantic import SecretStr

    from vec_inf_flows.catalog.listing import ModelInfo
    from vec_inf_flows.handle import ServerHandle
    from vec_inf_flows.launching import LaunchControls
    from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
    from vec_inf_flows.lifecycle.owner import OwnerRecord
    from vec_inf_flows.models import BatchLaunchResponse, LaunchResponse, MetricsResponse
    from vec_inf_flows.spec import LaunchSpec

log = logging.getLogger("vec_inf_flows.client")


def _job_id(job: str | ServerHandle) -> str:
    return job if isinstance(job, str) else job.job_id


class VecInfClient:
    """Launch and manage inference servers.

    Example::

        client = VecInfClient()
        server = client.launch("SmolLM2-135M-Instruct", engine="sim").handle
        server = client.wait_until_ready(server, timeout=600)  # the handle, with its URL
        print(server.base_url, server.max_concurrent_sequences)
        client.shutdown(server)

    ``backend`` is a backend object or a name (``auto``, ``slurm``, ``local``); by default
    ``$VEC_INF_BACKEND``, else Slurm when this machine has it, else local processes.
    ``leases``: a ``LeaseKeeper`` shared with other clients (a flow-run process renews every
    lease from one keeper, so any of its clients can release or drop one); by default the
    client makes its own when it first launches with a lease.
    """

    def __init__(
        self,
        *,
        backend: Backend | str | None = None,
        state_dir: str | Path | None = None,
        health_timeout: float = 3.0,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self._backend = None if isinstance(backend, str) else backend
        self._backend_name = backend if isinstance(backend, str) else None
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._health_timeout = health_timeout
        self._leases = leases

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from vec_inf_flows.backends.select import select_backend

            self._backend = select_backend(self._backend_name)
        return self._backend

    @property
    def state_dir(self) -> Path:
        return self._state_dir if self._state_dir is not None else jobdir.state_home()

    @property
    def index_root(self) -> Path:
        """Where this backend's job index lives: Slurm ids and local ids are separate spaces."""
        name = getattr(self.backend, "name", "slurm")
        return self.state_dir if name == "slurm" else self.state_dir / name

    @property
    def leases(self) -> LeaseKeeper:
        """Renews the leases of the servers this client launched with ``lease=``."""
        if self._leases is None:
            from vec_inf_flows.lifecycle.lease import LeaseKeeper

            self._leases = LeaseKeeper()
        return self._leases

    def _settle_held(self) -> None:
        """Cancel held jobs an earlier failed launch could not (see ``lifecycle.journal``)."""
        HeldJobJournal(self.state_dir).settle(self.backend.name, self.backend.cancel)

    # ------------------------------------------------------------------ catalog
    def list_models(self) -> list[ModelInfo]:
        from vec_inf_flows.catalog.listing import list_models

        return list_models()

    def model_config(self, model_name: str) -> dict[str, Any]:
        """The model's merged configuration (built-in catalog + ``VEC_INF_CONFIG``)."""
        from vec_inf_flows.catalog.listing import model_config_dump

        return model_config_dump(model_name)

    # ------------------------------------------------------------------ launch
    def launch(
        self,
        model_name: str,
        options: Any = None,
        *,
        api_key: SecretStr | str | None = None,
        labels: Mapping[str, str] | None = None,
        lease: LeasePolicy | None = None,
        idle_timeout: float | None = None,
        health_grace: float | None = DEFAULT_HEALTH_GRACE,
        owner: OwnerRecord | None = None,
        **overrides: Any,
    ) -> LaunchResponse:
        """Submit one server. Returns once the job is queued (not when the server is ready).

        ``options`` is a ``LaunchOptions`` (or a mapping), ``overrides`` win over it;
        ``api_key`` is the key the server will require (it lands only in the job's 0600
        secrets file). The response's ``handle`` is what the other methods take.
        ``lease``: this client renews a lease (``self.leases``) and the job stops by itself once
        renewals stop for ``lease.lapse_after`` seconds (this process ended or was killed);
        ``release_lease`` hands the server over to its time limit. ``idle_timeout``: seconds
        without requests after which the job stops. ``health_grace``: seconds a READY server may
        not answer /health before it is FAILED. ``owner``: recorded in the job (default: this
        process; the Prefect layer adds its API URL and flow run id).
        """
        from vec_inf_flows.catalog.options import merge_options
        from vec_inf_flows.catalog.resolve import resolve
        from vec_inf_flows.launching import check_capacity, launch_controls
        from vec_inf_flows.scripts.render import render_job_script

        controls = launch_controls(lease, idle_timeout, health_grace, owner)
        given = {key: value for key, value in overrides.items() if value is not None}
        spec = resolve(model_name, merge_options(options, given), api_key=api_key)
        check_capacity(self.backend, [spec])
        job_name = f"{spec.job_name_prefix}-{os.urandom(4).hex()}"
        script = render_job_script(spec, job_name)
        self._settle_held()
        job_id = self.backend.submit(script, job_name, hold=True)
        try:
            response = self._prepare(spec, job_id, job_name, script, labels, controls)
            self.backend.release(job_id)
        except BaseException as error:
            add_note(error, self._abandon(job_id, [(spec, job_id)], error))
            raise
        log.info("launched %s as job %s", model_name, job_id)
        return response

    def batch_launch(
        self,
        model_names: Sequence[str],
        batch_config: str | Path | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        options: Any = None,
        lease: LeasePolicy | None = None,
        idle_timeout: float | None = None,
        health_grace: float | None = DEFAULT_HEALTH_GRACE,
        owner: OwnerRecord | None = None,
    ) -> BatchLaunchResponse:
        """Submit several servers as ONE heterogeneous job: all start once all are allocated.

        ``options`` (e.g. account, work_dir) apply to every server of the batch; ``lease``,
        ``idle_timeout``, ``health_grace`` and ``owner`` too, as in ``launch``.
        """
        from vec_inf_flows.catalog.options import merge_options
        from vec_inf_flows.catalog.resolve import resolve_batch
        from vec_inf_flows.launching import check_capacity, launch_controls
        from vec_inf_flows.models import BatchLaunchResponse
        from vec_inf_flows.scripts.render import batch_job_paths, render_batch_script

        if len(model_names) < 2:
            raise ConfigError("batch-launch needs at least two models.")
        batch_options = merge_options(options) if options is not None else None
        controls = launch_controls(lease, idle_timeout, health_grace, owner)
        specs = resolve_batch(list(model_names), batch_config, batch_options)
        check_capacity(self.backend, specs)
        # Every component carries the same unique name, so one look-up finds them all.
        job_name = f"BATCH-vec-inf-{os.urandom(4).hex()}"
        batch_name = "BATCH-" + "-".join(spec.model_name for spec in specs)
        script = render_batch_script(specs, job_name, batch_name)
        self._settle_held()
        leader = self.backend.submit(script, job_name, hold=True)
        try:
            servers = [
                self._prepare(spec, f"{leader}+{offset}", job_name, script, labels, controls)
                for offset, spec in enumerate(specs)
            ]
            batch_paths = batch_job_paths(specs[0].log_dir, batch_name, leader)
            batch_paths.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
            jobdir.atomic_write(batch_paths.script, script)
            self.backend.release(leader)
        except BaseException as error:
            launches = [(spec, f"{leader}+{n}") for n, spec in enumerate(specs)]
            add_note(error, self._abandon(leader, launches, error))
            raise
        return BatchLaunchResponse(
            job_id=leader,
            job_name=batch_name,
            job_ids=[server.job_id for server in servers],
            model_names=[spec.model_name for spec in specs],
            servers=servers,
        )

    def _prepare(
        self,
        spec: LaunchSpec,
        job_id: str,
        job_name: str,
        script: str,
        labels: Mapping[str, str] | None,
        controls: LaunchControls,
    ) -> LaunchResponse:
        """Write the job directory before the held job is released, so the job finds it; from
        then on a lease, if asked for, is renewed."""
        from vec_inf_flows.launching import write_job_dir

        response = write_job_dir(spec, job_id, job_name, script, labels, controls, self.index_root)
        if controls.lease is not None:
            self.leases.hold(Path(response.job_dir), controls.lease)
        return response

    def _abandon(
        self, leader: str, launches: Sequence[tuple[LaunchSpec, str]], error: BaseException
    ) -> str | None:
        """Cancel the held job of a failed launch and clean up (see ``abandon_launch``)."""
        from vec_inf_flows.launching import job_dirs_of

        dirs = job_dirs_of(launches)
        if self._leases is not None:
            for _, directory in dirs:
                self._leases.drop(directory)
        journal = HeldJobJournal(self.state_dir)
        return abandon_launch(self.backend, journal, self.index_root, leader, dirs, error)

    def attach(self, job_id: str) -> ServerHandle:
        """The handle of a job launched earlier (by anyone using this job index), rebuilt from
        its job directory: model, concurrency, owner, and the API key when this user can read
        the job's 0600 secrets file. The URL is filled in by ``wait_until_ready``."""
        job_id = str(JobId.parse(job_id))
        handle = self._job_files(job_id).handle(job_id)
        if handle is None:
            raise JobNotFoundError(
                f"Job {job_id} has no job record of vec-inf-flows (looked in "
                f"{self.index_root / jobdir.INDEX_DIR}); only jobs launched by vec-inf-flows "
                "can be attached."
            )
        return handle

    # ------------------------------------------------------------------ status
    def status(self, job: str | ServerHandle) -> StatusResponse:
        return self.statuses([_job_id(job)])[0]

    def statuses(self, job_ids: Sequence[str] | None = None) -> list[StatusResponse]:
        """Status of many servers from ONE scheduler query; None means all of the user's servers
        (ours, and those vec-inf launched). See ``status_query``."""
        self._settle_held()
        return query_statuses(self.backend, self.index_root, job_ids, self._health_timeout)

    def _job_files(self, job_id: str, record: JobRecord | None = None) -> JobFiles:
        return job_files(job_id, record, self.index_root)

    def origin(self, job_id: str) -> Recognition:
        """Who launched ``job_id`` (this tool, vec-inf, or neither) and where its folder is."""
        job_id = str(JobId.parse(job_id))
        return recognise(job_id, self.backend.query([job_id]).get(job_id), self.index_root)

    # ------------------------------------------------------------------ metrics
    def metrics(
        self, job: str | ServerHandle, previous: MetricsResponse | None = None
    ) -> MetricsResponse:
        """Scrape a READY server's /metrics; rates come from the delta to ``previous``."""
        from vec_inf_flows.models import MetricsResponse
        from vec_inf_flows.server.http import fetch_metrics_text
        from vec_inf_flows.server.metrics import derive, parse_metrics

        status = self.status(job)
        if status.server_status is not ServerStatus.READY or status.base_url is None:
            detail = status.pending_reason or status.failed_reason or ""
            raise ServerError(
                f"Server {status.job_id} ({status.model_name}) is {status.server_status.value}"
                + (f": {detail}" if detail else "")
                + "; metrics are only available once it is READY."
            )
        snapshot = parse_metrics(fetch_metrics_text(status.base_url))
        before = previous.snapshot if previous is not None else None
        return MetricsResponse(
            job_id=status.job_id,
            model_name=status.model_name,
            base_url=status.base_url,
            timestamp=snapshot.timestamp,
            metrics=derive(snapshot, before),
            snapshot=snapshot,
        )

    # ------------------------------------------------------------------ shutdown
    def shutdown(
        self,
        jobs: str | ServerHandle | Sequence[str | ServerHandle],
        *,
        force: bool = False,
        wait: bool = True,
        timeout: float = 120.0,
    ) -> list[str]:
        """Cancel servers; with ``wait``, return once Slurm runs no part of them any more.

        Every id is checked before anything is cancelled: an unknown id raises
        JobNotFoundError, a job neither vec-inf-flows nor vec-inf launched raises
        ShutdownRefusedError unless ``force``. A server that had FAILED stays FAILED with its
        reason; a server that had already ended is left as it is.
        """
        from vec_inf_flows.lifecycle.shutdown import shut_down

        raw = list(jobs) if isinstance(jobs, Sequence) and not isinstance(jobs, str) else [jobs]
        ids = [str(JobId.parse(_job_id(job))) for job in raw]
        servers = {job_id: self._servers_of(job_id) for job_id in ids}
        every = [server for group in servers.values() for server in group]
        before = {status.job_id: status for status in self.statuses(every)}
        directories = {server: self._job_files(server).directory for server in every}
        leases = self._leases
        shut_down(
            self.backend,
            servers,
            before,
            directories,
            force=force,
            wait=wait,
            timeout=timeout,
            on_cancelled=leases.drop if leases is not None else lambda _directory: None,
        )
        return ids

    def _servers_of(self, job_id: str) -> list[str]:
        """The servers a job id runs: itself, or the components of a batch's leader id."""
        if "+" in job_id or jobdir.lookup(self.index_root, job_id) is not None:
            return [job_id]
        components: list[str] = []
        while jobdir.lookup(self.index_root, f"{job_id}+{len(components)}") is not None:
            components.append(f"{job_id}+{len(components)}")
        return components or [job_id]

    def drop_lease(self, job: str | ServerHandle) -> None:
        """Stop renewing the lease of a server (every component of a batch's leader id): its
        job stops by itself once the lease lapses. What teardown does when a cancel failed."""
        if self._leases is None:
            return
        for server in self._servers_of(str(JobId.parse(_job_id(job)))):
            directory = jobdir.lookup(self.index_root, server)  # our index only: no Slurm call
            if directory is not None:
                self._leases.drop(directory)

    def release_lease(self, job: str | ServerHandle) -> None:
        """Hand a server launched with a lease over to its time limit (or ``shutdown``)."""
        job_id = _job_id(job)
        directory = self._job_files(str(JobId.parse(job_id))).directory
        if directory is None:
            raise JobNotFoundError(f"Job {job_id} has no vec-inf-flows job record.")
        self.leases.release(directory)

    # ------------------------------------------------------------------ waiting
    @overload
    def wait_until_ready(
        self,
        job: ServerHandle,
        timeout: float = ...,
        poll_interval: float = ...,
        on_status: Callable[[StatusResponse], None] | None = ...,
    ) -> ServerHandle: ...
    @overload
    def wait_until_ready(
        self,
        job: str,
        timeout: float = ...,
        poll_interval: float = ...,
        on_status: Callable[[StatusResponse], None] | None = ...,
    ) -> StatusResponse: ...
    def wait_until_ready(
        self,
        job: str | ServerHandle,
        timeout: float = 1800.0,
        poll_interval: float = 5.0,
        on_status: Callable[[StatusResponse], None] | None = None,
    ) -> StatusResponse | ServerHandle:
        """Poll until READY; raise ServerError at once when it never will be (FAILED,
        STOPPING, SHUTDOWN, FOREIGN), or at the timeout.

        Given a handle, returns the handle with its base URL; given a job id, the status.
        Polls start fast (0.5 s) and back off to ``poll_interval`` (``waiting``).
        """
        from vec_inf_flows.waiting import poll_until_ready

        status = poll_until_ready(self.status, _job_id(job), timeout, poll_interval, on_status)
        if isinstance(job, str):
            return status
        assert status.base_url is not None  # READY always carries its URL
        return job.at(status.base_url)
