"""What a job's directory holds about it: the launch record written at submission, the markers
the job side adds, the 0600 secrets file, and the server handle they rebuild.

The client writes these files (``launch_record``) and reads them back (``JobFiles``); status,
attach and shutdown need nothing but the job id and this directory. pydantic loads only when a
handle is built, so a plain ``status`` does not pay for it here.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.lifecycle.evidence import JobEvidence, read_evidence, read_shutdown
from vec_inf_flows.origin import JobOrigin

if TYPE_CHECKING:
    from pathlib import Path

    from vec_inf_flows.handle import ServerHandle
    from vec_inf_flows.lifecycle.owner import OwnerRecord
    from vec_inf_flows.server.logscan import LogVerdict
    from vec_inf_flows.spec import LaunchSpec

SECRET_PLACEHOLDER = "********"
API_KEY_VARIABLE = "VEC_INF_API_KEY"


@dataclass(frozen=True)
class JobFiles:
    """What a job's directory says about it (None where the file is missing)."""

    paths: JobPaths | None
    config: dict[str, Any] | None
    origin: JobOrigin = JobOrigin.FOREIGN  # who launched it (``origin.recognise``)

    @property
    def model_name(self) -> str | None:
        return None if self.config is None else self.config.get("model_name")

    @property
    def server_address(self) -> str | None:
        return None if self.config is None else self.config.get("server_address")

    @property
    def shutdown_requested(self) -> bool:
        """A shutdown whose cancel succeeded (an unconfirmed marker means it is under way or
        failed, and the job may well still serve)."""
        marker = read_shutdown(self.paths.directory) if self.paths is not None else None
        return marker is not None and marker.confirmed

    @property
    def directory(self) -> Path | None:
        return self.paths.directory if self.paths is not None else None

    @property
    def evidence(self) -> JobEvidence:
        return read_evidence(self.directory)

    @property
    def engine_exit(self) -> int | None:
        if self.paths is None:
            return None
        try:
            return int(self.paths.exit_marker.read_text().strip())
        except (OSError, ValueError):
            return None

    def log_verdict(self) -> LogVerdict | None:
        from vec_inf_flows.server.logscan import scan_files

        if self.paths is None:
            return None
        return scan_files([self.paths.err, self.paths.out])

    def secret(self, name: str) -> str | None:
        """A variable of the 0600 ``.secrets.env``; None when absent or not readable (a job
        of another user: its key is theirs to give)."""
        if self.paths is None:
            return None
        try:
            words = shlex.split(self.paths.secrets.read_text())
        except (OSError, ValueError):
            return None
        for word in words:
            key, sep, value = word.partition("=")
            if sep and key == name:
                return value
        return None

    def handle(self, job_id: str) -> ServerHandle | None:
        """The handle a launch returned, rebuilt from the launch record and the secrets file."""
        from pydantic import SecretStr

        from vec_inf_flows.handle import ServerHandle, max_concurrent_sequences
        from vec_inf_flows.lifecycle.owner import OwnerRecord

        if self.config is None:
            return None
        key = self.secret(API_KEY_VARIABLE)
        engine_args = self.config.get("engine_args")
        return ServerHandle(
            job_id=job_id,
            model_name=str(self.config.get("model_name") or "unknown"),
            api_key=SecretStr(key) if key is not None else None,
            max_concurrent_sequences=max_concurrent_sequences(
                str(self.config.get("engine") or "vllm"),
                engine_args if isinstance(engine_args, Mapping) else {},
            ),
            job_dir=str(self.paths.directory) if self.paths is not None else None,
            owner=OwnerRecord.from_job_json(self.config),
        )


def launch_record(
    spec: LaunchSpec,
    job_id: str,
    job_name: str,
    paths: JobPaths,
    labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The job's JSON: the launch config with secrets replaced by a placeholder."""
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


def launched_handle(
    spec: LaunchSpec, job_id: str, paths: JobPaths, owner: OwnerRecord | None = None
) -> ServerHandle:
    """The handle of a job just submitted from ``spec`` (no URL yet)."""
    from pydantic import SecretStr

    from vec_inf_flows.handle import ServerHandle, max_concurrent_sequences

    key = dict(spec.secret_env).get(API_KEY_VARIABLE)
    return ServerHandle(
        job_id=job_id,
        model_name=spec.model_name,
        api_key=SecretStr(key) if key is not None else None,
        max_concurrent_sequences=max_concurrent_sequences(spec.engine, spec.engine_args),
        job_dir=str(paths.directory),
        owner=owner,
    )
