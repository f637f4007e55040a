"""The steps of a launch between ``sbatch --hold`` and ``scontrol release``: what the job side is
asked to enforce, and the job directory it must find when it starts.

Kept apart from the client so the client reads as the sequence (resolve, submit, prepare,
release) and the files a job dir holds are listed in one place. Loaded on the launch path only:
pydantic (the watch and owner models) never reaches ``status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.jobfiles import launch_record, launched_handle
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.lifecycle.owner import OwnerRecord
from vec_inf_flows.lifecycle.watch import WatchConfig, write_watch
from vec_inf_flows.models import LaunchResponse
from vec_inf_flows.spec import LaunchSpec


@dataclass(frozen=True)
class LaunchControls:
    """What a launch asks the job side to enforce, and who the owner is."""

    watch: WatchConfig
    owner: OwnerRecord

    @property
    def lease(self) -> LeasePolicy | None:
        return self.watch.lease


def launch_controls(
    lease: LeasePolicy | None,
    idle_timeout: float | None,
    health_grace: float | None,
    owner: OwnerRecord | None,
) -> LaunchControls:
    """Validated before anything is submitted: a bad value never leaves a job behind."""
    watch = WatchConfig(lease=lease, idle_timeout=idle_timeout, health_grace=health_grace)
    return LaunchControls(watch, owner or OwnerRecord.current())


def check_capacity(backend: Backend, specs: Sequence[LaunchSpec]) -> None:
    """Refuse, before submitting, a request no node of the partition can hold."""
    if getattr(backend, "name", "") == "slurm":
        from vec_inf_flows.backends.slurm.capacity import check_specs_fit

        check_specs_fit(specs)


def write_job_dir(
    spec: LaunchSpec,
    job_id: str,
    job_name: str,
    script: str,
    labels: Mapping[str, str] | None,
    controls: LaunchControls,
    index_root: Path,
) -> LaunchResponse:
    """Write everything the job reads at start-up, then register it in the job index."""
    from vec_inf_flows.scripts.environment import render_secrets_env
    from vec_inf_flows.scripts.render import job_side_sources

    paths = JobPaths.for_job(spec.log_dir, spec.model_family, spec.model_name, job_id)
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    config = launch_record(spec, job_id, job_name, paths, labels)
    config["owner"] = controls.owner.model_dump(mode="json")
    jobdir.atomic_write(paths.script, script)
    for filename, source in job_side_sources(spec).items():
        jobdir.atomic_write(paths.directory / filename, source)
    if spec.secret_env:
        jobdir.atomic_write(paths.secrets, render_secrets_env(spec.secret_env), mode=0o600)
    jobdir.write_json(paths.json, config)
    write_watch(paths.directory, controls.watch)
    jobdir.register(index_root, job_id, paths.directory)
    return LaunchResponse(
        job_id=job_id,
        job_name=job_name,
        model_name=spec.model_name,
        job_dir=str(paths.directory),
        config=config,
        handle=launched_handle(spec, job_id, paths, controls.owner),
    )


def job_dirs_of(launches: Sequence[tuple[LaunchSpec, str]]) -> list[tuple[str, Path]]:
    """Where each (spec, job id) of a launch writes its job directory."""
    return [
        (job_id, JobPaths.for_job(s.log_dir, s.model_family, s.model_name, job_id).directory)
        for s, job_id in launches
    ]
