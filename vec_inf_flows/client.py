"""VecInfClient: the Prefect-free Python API (launch, status, metrics, shutdown, wait).

It only composes the layers below it: the catalog resolves a launch spec, the renderer writes the
script, the backend submits it, and status is decided from one bulk scheduler query plus the
job's own files and a health check.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import ConfigError, ServerError, SlurmTransientError, VecInfError
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.jobs import JobId, JobRecord
from vec_inf_flows.models import (
    BatchLaunchResponse,
    LaunchResponse,
    MetricsResponse,
    ServerStatus,
    StatusResponse,
)
from vec_inf_flows.spec import LaunchSpec

if TYPE_CHECKING:
    from vec_inf_flows.catalog.listing import ModelInfo
    from vec_inf_flows.server.http import HealthResult
    from vec_inf_flows.server.logscan import LogVerdict

log = logging.getLogger("vec_inf_flows.client")

JOB_NAME_MARKER = "-vec-inf-"


def _default_backend() -> Backend:
    from vec_inf_flows.backends.select import select_backend

    return select_backend()


@dataclass(frozen=True)
class _JobFiles:
    """What a job's directory says about it (None where the file is missing)."""

    paths: JobPaths | None
    config: dict[str, Any] | None

    @property
    def model_name(self) -> str | None:
        return None if self.config is None else self.config.get("model_name")

    @property
    def server_address(self) -> str | None:
        return None if self.config is None else self.config.get("server_address")

    @property
    def shutdown_requested(self) -> bool:
        return self.paths is not None and self.paths.shutdown_marker.exists()

    @property
    def engine_exit(self) -> int | None:
        if self.paths is None:
            return None
        try:
            return int(self.paths.exit_marker.read_text().strip())
        except (OSError, ValueError):
            return None


class VecInfClient:
    """Launch and manage inference servers.

    Example::

        client = VecInfClient()
        launched = client.launch("SmolLM2-135M-Instruct", engine="sim")
        status = client.wait_until_ready(launched.job_id, timeout=600)
        print(status.base_url)
        client.shutdown(launched.job_id)
    """

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        state_dir: str | Path | None = None,
        health_timeout: float = 3.0,
    ) -> None:
        self._backend = backend
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._health_timeout = health_timeout

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = _default_backend()
        return self._backend

    @property
    def state_dir(self) -> Path:
        return self._state_dir if self._state_dir is not None else jobdir.state_home()

    @property
    def index_root(self) -> Path:
        """Where this backend's job index lives: Slurm ids and local ids are separate spaces."""
        name = getattr(self.backend, "name", "slurm")
        return self.state_dir if name == "slurm" else self.state_dir / name

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
        labels: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LaunchResponse:
        """Submit one server. Returns once the job is queued (not when the server is ready)."""
        from vec_inf_flows.catalog.resolve import resolve
        from vec_inf_flows.scripts.render import render_job_script

        spec = resolve(model_name, _options(options, overrides))
        job_name = f"{spec.job_name_prefix}-{secrets.token_hex(4)}"
        script = render_job_script(spec, job_name)
        job_id = self.backend.submit(script, job_name, hold=True)
        try:
            response = self._prepare(spec, job_id, job_name, script, labels)
            self.backend.release(job_id)
        except BaseException:
            self._cancel_quietly([job_id])
            self._discard([(spec, job_id)])
            raise
        log.info("launched %s as job %s", model_name, job_id)
        return response

    def batch_launch(
        self,
        model_names: Sequence[str],
        batch_config: str | Path | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> BatchLaunchResponse:
        """Submit several servers as ONE heterogeneous job: all start once all are allocated."""
        from vec_inf_flows.catalog.resolve import resolve_batch
        from vec_inf_flows.scripts.render import batch_job_paths, render_batch_script

        if len(model_names) < 2:
            raise ConfigError("batch-launch needs at least two models.")
        specs = resolve_batch(list(model_names), batch_config)
        # Every component carries the same unique name, so one look-up finds them all.
        job_name = f"BATCH-vec-inf-{secrets.token_hex(4)}"
        batch_name = "BATCH-" + "-".join(spec.model_name for spec in specs)
        script = render_batch_script(specs, job_name, batch_name)
        leader = self.backend.submit(script, job_name, hold=True)
        try:
            servers = [
                self._prepare(spec, f"{leader}+{offset}", job_name, script, labels)
                for offset, spec in enumerate(specs)
            ]
            batch_paths = batch_job_paths(specs[0].log_dir, batch_name, leader)
            batch_paths.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
            jobdir.atomic_write(batch_paths.script, script)
            self.backend.release(leader)
        except BaseException:
            self._cancel_quietly([leader])
            self._discard([(spec, f"{leader}+{n}") for n, spec in enumerate(specs)])
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
    ) -> LaunchResponse:
        """Write the job directory before the held job is released, so the job finds it."""
        from vec_inf_flows.scripts.environment import render_secrets_env
        from vec_inf_flows.scripts.render import job_side_sources

        paths = JobPaths.for_job(spec.log_dir, spec.model_family, spec.model_name, job_id)
        paths.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        config = launch_record(spec, job_id, job_name, paths, labels)
        jobdir.atomic_write(paths.script, script)
        for filename, source in job_side_sources(spec).items():
            jobdir.atomic_write(paths.directory / filename, source)
        if spec.secret_env:
            jobdir.atomic_write(paths.secrets, render_secrets_env(spec.secret_env), mode=0o600)
        jobdir.write_json(paths.json, config)
        jobdir.register(self.index_root, job_id, paths.directory)
        return LaunchResponse(
            job_id=job_id,
            job_name=job_name,
            model_name=spec.model_name,
            job_dir=str(paths.directory),
            config=config,
        )

    # ------------------------------------------------------------------ status
    def status(self, job_id: str) -> StatusResponse:
        return self.statuses([job_id])[0]

    def statuses(self, job_ids: Sequence[str] | None = None) -> list[StatusResponse]:
        """Status of many servers from ONE scheduler query; None means all of the user's servers."""
        from vec_inf_flows.server.http import check_health_many

        if job_ids is None:
            records = {
                record.job_id: record
                for record in self.backend.list_jobs(JOB_NAME_MARKER)
                if JOB_NAME_MARKER in record.name
            }
            ids = sorted(records, key=JobId.parse)
        else:
            ids = [str(JobId.parse(job_id)) for job_id in job_ids]
            records = self.backend.query(ids) if ids else {}
        files = {job_id: self._job_files(job_id) for job_id in ids}
        verdicts = {job_id: _log_verdict(files[job_id]) for job_id in ids}
        to_probe = {
            job_id: address
            for job_id in ids
            if (address := files[job_id].server_address)
            and verdicts[job_id] is not None
            and verdicts[job_id].ready  # type: ignore[union-attr]
            and (rec := records.get(job_id)) is not None
            and not rec.phase.terminal
        }
        health = check_health_many(list(to_probe.values()), timeout=self._health_timeout)
        return [
            self._decide(
                job_id,
                records.get(job_id),
                files[job_id],
                verdicts[job_id],
                health.get(to_probe.get(job_id, "")),
            )
            for job_id in ids
        ]

    def _decide(
        self,
        job_id: str,
        record: JobRecord | None,
        files: _JobFiles,
        verdict: LogVerdict | None,
        health: HealthResult | None,
    ) -> StatusResponse:
        from vec_inf_flows.errors import JobNotFoundError
        from vec_inf_flows.status import decide

        if record is None and files.config is None:
            raise JobNotFoundError(
                f"Job {job_id} is unknown: Slurm does not know it and no job record of "
                f"vec-inf-flows names it (looked in {self.index_root / jobdir.INDEX_DIR})."
            )
        model_name = files.model_name or _model_from_job_name(record.name if record else "")
        response = decide(
            job_id=job_id,
            model_name=model_name,
            record=record,
            verdict=verdict,
            health=health,
            server_address=files.server_address,
            shutdown_requested=files.shutdown_requested,
            engine_exit=files.engine_exit,
        )
        if files.paths is not None and response.job_dir is None:
            response = response.model_copy(update={"job_dir": str(files.paths.directory)})
        return response

    def _job_files(self, job_id: str) -> _JobFiles:
        directory = jobdir.lookup(self.index_root, job_id)
        if directory is None:
            return _JobFiles(None, None)
        stem = directory.name
        paths = JobPaths(directory, stem)
        return _JobFiles(paths, jobdir.read_json(paths.json))

    # ------------------------------------------------------------------ metrics
    def metrics(self, job_id: str, previous: MetricsResponse | None = None) -> MetricsResponse:
        """Scrape a READY server's /metrics; rates come from the delta to ``previous``."""
        from vec_inf_flows.server.http import fetch_metrics_text
        from vec_inf_flows.server.metrics import derive, parse_metrics

        status = self.status(job_id)
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
    def shutdown(self, job_ids: str | Sequence[str]) -> list[str]:
        """Cancel servers. Every id is checked before anything is cancelled."""
        raw = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        ids = [str(JobId.parse(job_id)) for job_id in raw]
        for job_id in ids:
            files = self._job_files(job_id)
            if files.paths is not None:
                jobdir.atomic_write(files.paths.shutdown_marker, f"{time.time():.3f}\n")
        self.backend.cancel(ids)
        return ids

    def _discard(self, launches: Sequence[tuple[LaunchSpec, str]]) -> None:
        """Remove what a launch that never started wrote: no job dir points at a dead job."""
        import shutil

        for spec, job_id in launches:
            paths = JobPaths.for_job(spec.log_dir, spec.model_family, spec.model_name, job_id)
            shutil.rmtree(paths.directory, ignore_errors=True)
            jobdir.index_link(self.index_root, job_id).unlink(missing_ok=True)

    def _cancel_quietly(self, ids: Sequence[str]) -> None:
        try:
            self.backend.cancel(ids)
        except VecInfError as error:  # the original error matters more; say what is left
            log.error("could not cancel job(s) %s after a failed launch: %s", ids, error)

    # ------------------------------------------------------------------ waiting
    def wait_until_ready(
        self,
        job_id: str,
        timeout: float = 1800.0,
        poll_interval: float = 5.0,
        on_status: Callable[[StatusResponse], None] | None = None,
    ) -> StatusResponse:
        """Poll until READY; raise ServerError at once on FAILED or SHUTDOWN, or at the timeout.

        Polls start fast (0.5 s) and back off to ``poll_interval``; a transient scheduler error
        is logged and polling goes on, since the job itself is unaffected.
        """
        deadline = time.monotonic() + timeout
        delay = min(0.5, poll_interval)
        last: StatusResponse | None = None
        while True:
            try:
                last = self.status(job_id)
            except SlurmTransientError as error:
                log.warning("status of %s unavailable for now (%s); still waiting", job_id, error)
            else:
                if on_status is not None:
                    on_status(last)
                if last.server_status is ServerStatus.READY:
                    return last
                if last.terminal:
                    reason = last.failed_reason or last.pending_reason or "no reason recorded"
                    raise ServerError(
                        f"Server {job_id} ({last.model_name}) is {last.server_status.value} "
                        f"before becoming ready: {reason}"
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state = last.server_status.value if last else "unknown"
                raise ServerError(
                    f"Server {job_id} not ready after {timeout:.0f} s (last status: {state})."
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, poll_interval)


# ---------------------------------------------------------------------- helpers
def _options(options: Any, overrides: Mapping[str, Any]) -> Any:
    from vec_inf_flows.catalog.options import LaunchOptions

    if options is None:
        base: dict[str, Any] = {}
    elif isinstance(options, LaunchOptions):
        base = options.model_dump(exclude_none=True)
    else:
        base = dict(options)
    base.update({key: value for key, value in overrides.items() if value is not None})
    return LaunchOptions.model_validate(base)


SECRET_PLACEHOLDER = "********"


def launch_record(
    spec: LaunchSpec,
    job_id: str,
    job_name: str,
    paths: JobPaths,
    labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The job's JSON: the launch config with secrets replaced by a placeholder."""
    from dataclasses import asdict

    from vec_inf_flows.catalog.engine_args import to_argv

    data = asdict(spec)
    data.pop("secret_env", None)
    data["engine_args"] = dict(spec.engine_args)
    data["engine_argv"] = to_argv(spec.engine_args)
    data["env"] = dict(spec.env)
    data["secret_env"] = {name: SECRET_PLACEHOLDER for name, _ in spec.secret_env}
    data.update(
        {
            "job_id": job_id,
            "slurm_job_id": job_id,
            "job_name": job_name,
            "job_dir": str(paths.directory),
            "out_file": str(paths.out),
            "err_file": str(paths.err),
            "labels": dict(labels or {}),
            "launched_at": time.time(),
        }
    )
    return data


def _log_verdict(files: _JobFiles) -> LogVerdict | None:
    from vec_inf_flows.server.logscan import scan_files

    if files.paths is None:
        return None
    return scan_files([files.paths.err, files.paths.out])


def _model_from_job_name(name: str) -> str:
    head, marker, _ = name.rpartition(JOB_NAME_MARKER)
    return head if marker else (name or "unknown")
