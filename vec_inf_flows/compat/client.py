"""``VecInfClient`` with vec-inf 0.9.0's method names, parameters and return shapes.

Code written for vec-inf runs after one changed import::

    from vec_inf.client import VecInfClient, LaunchOptions        # before
    from vec_inf_flows.compat import VecInfClient, LaunchOptions  # after

Every call goes through this project's client, so the fixes come along (status after Slurm
forgets a job, one squeue for any number of jobs, quoting, retries, secrets kept out of files);
only the shapes are vec-inf's. Where vec-inf's behaviour was a bug, ours is kept and said so in
the method's docstring.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vec_inf_flows.compat import shapes
from vec_inf_flows.compat.models import (
    BatchLaunchResponse,
    LaunchOptions,
    LaunchResponse,
    MetricsResponse,
    ModelInfo,
    ModelStatus,
    ModelType,
    StatusResponse,
)
from vec_inf_flows.errors import JobNotFoundError, SlurmPermanentError

if TYPE_CHECKING:
    from vec_inf_flows.catalog.schema import ModelConfig
    from vec_inf_flows.client import VecInfClient as CoreClient
    from vec_inf_flows.models import MetricsResponse as CoreMetrics
    from vec_inf_flows.server_status import StatusResponse as CoreStatus

_HIDDEN = ("model_name", "venv", "log_dir")  # what vec-inf's ModelInfo.config leaves out


class VecInfClient:
    """vec-inf's client API on top of ``vec_inf_flows.client.VecInfClient``."""

    def __init__(self, client: CoreClient | None = None) -> None:
        if client is None:
            from vec_inf_flows.client import VecInfClient as Core

            client = Core()
        self._client = client
        self._previous: dict[str, CoreMetrics] = {}  # last scrape per job, for rates

    @property
    def core(self) -> CoreClient:
        """This project's client, for what vec-inf's API cannot express."""
        return self._client

    # ------------------------------------------------------------------ catalog
    def list_models(self) -> list[ModelInfo]:
        from vec_inf_flows.catalog.loader import load_catalog

        catalog = load_catalog()
        infos = []
        for name in catalog.names():
            config = catalog.models[name]
            dumped = config.model_dump()
            infos.append(
                ModelInfo(
                    name=name,
                    family=config.model_family,
                    variant=config.model_variant,
                    model_type=ModelType(config.model_type),
                    config={k: v for k, v in dumped.items() if k not in _HIDDEN},
                )
            )
        return infos

    def get_model_config(self, model_name: str) -> ModelConfig:
        """The model's merged config (same field names as vec-inf's ``ModelConfig``)."""
        from vec_inf_flows.catalog.loader import load_catalog

        return load_catalog().get(model_name)

    # ------------------------------------------------------------------ launch
    def launch_model(self, model_name: str, options: LaunchOptions | None = None) -> LaunchResponse:
        overrides = _option_values(options)
        response = self._client.launch(model_name, **overrides)
        params = shapes.launch_params(response.config)
        return LaunchResponse(
            slurm_job_id=response.job_id,
            model_name=response.model_name,
            config=params,
            raw_output=f"Submitted batch job {response.job_id}",
        )

    def batch_launch_models(
        self,
        model_names: list[str],
        batch_config: str | None = None,
        account: str | None = None,
        work_dir: str | None = None,
    ) -> BatchLaunchResponse:
        options = {"account": account, "work_dir": work_dir}
        response = self._client.batch_launch(
            model_names,
            batch_config,
            options={key: value for key, value in options.items() if value},
        )
        return BatchLaunchResponse(
            slurm_job_id=response.job_id,
            slurm_job_name=response.job_name,
            model_names=list(response.model_names),
            config=shapes.batch_params(response),
            raw_output=f"Submitted batch job {response.job_id}",
        )

    # ------------------------------------------------------------------ status
    def fetch_running_jobs(self) -> list[str]:
        """Ids of the user's servers Slurm still lists (this tool's and vec-inf's), from one
        ``squeue`` (vec-inf ran one ``scontrol`` per job of the user)."""
        from vec_inf_flows.origin import OUR_NAME, VECINF_SUFFIX

        records = self._client.backend.list_jobs(VECINF_SUFFIX)
        return [
            record.job_id
            for record in records
            if (OUR_NAME.search(record.name) or record.name.endswith(VECINF_SUFFIX))
            and not record.phase.terminal
        ]

    def get_status(self, slurm_job_id: str) -> StatusResponse:
        return _status(self._core_status(slurm_job_id))

    def _core_status(self, slurm_job_id: str) -> CoreStatus:
        try:
            return self._client.status(str(slurm_job_id))
        except JobNotFoundError as error:  # vec-inf raised SlurmJobError here
            raise SlurmPermanentError(str(error)) from None

    def wait_until_ready(
        self,
        slurm_job_id: str,
        timeout_seconds: int = 1800,
        poll_interval_seconds: int = 10,
    ) -> StatusResponse:
        """Poll until READY; ``ServerError`` at once on FAILED or SHUTDOWN, or at the timeout.

        Polls start at 0.5 s and back off to ``poll_interval_seconds`` (vec-inf slept the full
        interval from the first poll, and waited out the timeout on a dead job).
        """
        try:
            ready = self._client.wait_until_ready(
                str(slurm_job_id), timeout=timeout_seconds, poll_interval=poll_interval_seconds
            )
        except JobNotFoundError as error:
            raise SlurmPermanentError(str(error)) from None
        return _status(ready)

    # ------------------------------------------------------------------ metrics
    def get_metrics(self, slurm_job_id: str) -> MetricsResponse:
        """A READY server's metrics under vec-inf's names; a string says why there are none.

        Rates come from the previous call for the same job; unlike vec-inf, a server that was
        not ready at the first call is measured once it is.
        """
        from vec_inf_flows.errors import ServerError

        job_id = str(slurm_job_id)
        status = self._core_status(job_id)
        if status.base_url is None:
            return MetricsResponse(status.model_name, _not_ready(status), time.time())
        try:
            current = self._client.metrics(job_id, previous=self._previous.get(job_id))
        except ServerError as error:
            message = f"Metrics request failed, `metrics` endpoint might not be ready yet: {error}"
            return MetricsResponse(status.model_name, message, time.time())
        self._previous[job_id] = current
        values = shapes.metrics_dict(current.metrics, current.snapshot)
        return MetricsResponse(current.model_name, values, current.timestamp)

    # ------------------------------------------------------------------ shutdown, cleanup
    def shutdown_model(self, slurm_job_id: str) -> bool:
        self._client.shutdown(str(slurm_job_id))
        return True

    def cleanup_logs(
        self,
        log_dir: str | Path | None = None,
        model_family: str | None = None,
        model_name: str | None = None,
        job_id: int | None = None,
        before_job_id: int | None = None,
        dry_run: bool = False,
    ) -> list[Path]:
        """Delete matching log folders; those of jobs that still run are kept (vec-inf deleted
        them, and with no filter the whole log root)."""
        from vec_inf_flows.logcleanup import CleanupFilter, clean_logs, live_job_ids
        from vec_inf_flows.logcleanup import default_log_root as root

        selection = CleanupFilter(model_family, model_name, job_id, before_job_id)
        live = live_job_ids(self._client.backend.list_jobs())
        result = clean_logs(
            Path(log_dir).expanduser() if log_dir else root(),
            selection,
            live,
            dry_run=dry_run,
            index_root=self._client.index_root,
        )
        return result.matched


def _option_values(options: LaunchOptions | dict[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    values = options if isinstance(options, dict) else vars(options)
    return {key: value for key, value in values.items() if value is not None}


# Our states vec-inf has no word for: a server being stopped is on its way to SHUTDOWN; a job
# that is no server at all is what vec-inf calls UNAVAILABLE.
_THEIR_WORD = {"STOPPING": ModelStatus.SHUTDOWN, "FOREIGN": ModelStatus.UNAVAILABLE}


def _model_status(ours: str) -> ModelStatus:
    return _THEIR_WORD.get(ours) or ModelStatus(ours)


def _status(status: CoreStatus) -> StatusResponse:
    fields = shapes.status_fields(status)
    return StatusResponse(
        model_name=status.model_name,
        log_dir=status.job_dir or "",
        server_status=_model_status(status.server_status.value),
        job_state=(status.slurm_state or status.server_status.value).split()[0],
        raw_output=json.dumps(status.model_dump(mode="json")),
        base_url=fields["base_url"],
        pending_reason=status.pending_reason,
        failed_reason=status.failed_reason,
    )


def _not_ready(status: CoreStatus) -> str:
    """Why there are no metrics yet, in vec-inf's words where it had some."""
    if status.server_status.value == "PENDING":
        reason = f" ({status.pending_reason})" if status.pending_reason else ""
        return f"Pending resources for server initialization{reason}"
    why = status.failed_reason or status.detail
    return f"Server not ready: {status.server_status.value}" + (f" ({why})" if why else "")


__all__: Sequence[str] = ["VecInfClient"]
