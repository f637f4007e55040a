"""Submitting a group's router: a small CPU job (or a local process) next to the replicas.

Like a server launch: the script is submitted held, its job directory (script, launcher, JSON
with the owner, and with a lease the job-side watch) is written and indexed, then the job is
released; any failure in between cancels the held job
and removes what was written, so nothing half-made is left behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import ConfigError, VecInfError
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.lifecycle.owner import OwnerRecord
from vec_inf_flows.origin import JOB_NAME_MARKER
from vec_inf_flows.replicas.plan import RouterSettings
from vec_inf_flows.replicas.record import GROUP_LABEL, GroupRecord, Member, Role
from vec_inf_flows.scripts.render import LAUNCHER_FILENAME, launcher_source
from vec_inf_flows.scripts.router import RouterSpec, render_router_script, router_job_dir
from vec_inf_flows.spec import LaunchSpec, SlurmResources


def client_for(client: VecInfClient, backend_name: str) -> VecInfClient:
    """A client on ``backend_name`` sharing ``client``'s state and lease keeper (the router may
    run locally)."""
    if getattr(client.backend, "name", "slurm") == backend_name:
        return client
    from vec_inf_flows.backends.select import select_backend

    return VecInfClient(
        backend=select_backend(backend_name), state_dir=client.state_dir, leases=client.leases
    )


def check_router_installed(python: str) -> None:
    """Refuse before anything is queued when this interpreter's router is missing."""
    if Path(python).resolve() != Path(sys.executable).resolve():
        return  # another interpreter: the job reports it, we cannot check from here
    if importlib.util.find_spec("vllm_router") is None:
        raise ConfigError(
            "The router needs vllm-router: pip install 'vec-inf-flows[router]' "
            "(or launch with --router none and let the workload runner balance)."
        )


def router_spec(record: GroupRecord, spec: LaunchSpec, settings: RouterSettings) -> RouterSpec:
    """Same partition, account, QoS and time limit as the replicas; a CPU and a little memory."""
    replicas = spec.resources
    resources = SlurmResources(
        time=replicas.time,
        cpus_per_task=settings.cpus_per_task,
        mem_per_node=settings.mem_per_node,
        partition=replicas.partition,
        qos=replicas.qos,
        account=replicas.account,
        exclude=replicas.exclude,
        work_dir=replicas.work_dir,
    )
    return RouterSpec(
        group_id=record.group_id,
        group_dir=record.directory,
        resources=resources,
        python=settings.python or spec.python,
        venv=spec.venv,
        policy=settings.policy,
        health_check_interval_s=settings.health_check_interval_s,
        max_concurrent_requests=settings.max_concurrent_requests,
        queue_size=settings.queue_size,
    )


def launch_router(
    client: VecInfClient,
    record: GroupRecord,
    spec: LaunchSpec,
    settings: RouterSettings,
    labels: Mapping[str, str] | None = None,
    *,
    lease: LeasePolicy | None = None,
    owner: OwnerRecord | None = None,
) -> Member:
    """Submit the router; returns its member entry (the caller adds it to the record).

    With ``lease`` the router job carries the group's lease: its job dir gets ``watch.json``
    and the job-side watch (``jobwatch.py``, loaded by the launcher), and the client's keeper
    renews ``lease.json`` there, as for every replica.
    """
    place = "local" if settings.place == "local" else client.backend.name
    on = client_for(client, place)
    rspec = router_spec(record, spec, settings)
    check_router_installed(rspec.python)
    job_name = f"{record.model_name}-router{JOB_NAME_MARKER}{secrets.token_hex(4)}"
    script = render_router_script(rspec, job_name)
    backend: Backend = on.backend
    job_id = backend.submit(script, job_name, hold=True)
    directory, stem = router_job_dir(record.directory, job_id)
    paths = JobPaths(Path(directory), stem)
    try:
        paths.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        jobdir.atomic_write(paths.script, script)
        jobdir.atomic_write(paths.directory / LAUNCHER_FILENAME, launcher_source())
        written = _router_record(record, rspec, job_id, job_name, paths)
        written["labels"] = {**(labels or {}), **written["labels"]}
        written["owner"] = (owner or OwnerRecord.current()).model_dump(mode="json")
        jobdir.write_json(paths.json, written)
        if lease is not None:
            _watch_lease(paths.directory, lease)
            on.leases.hold(paths.directory, lease)
        jobdir.register(on.index_root, job_id, paths.directory)
        backend.release(job_id)
    except BaseException:
        on.leases.drop(paths.directory)
        _undo(backend, on, job_id, paths)
        raise
    return Member(job_id=job_id, role=Role.ROUTER, backend=place, job_dir=directory)


def _watch_lease(directory: Path, lease: LeasePolicy) -> None:
    """The job-side watch, enforcing the lease alone (the router has no engine metrics)."""
    from vec_inf_flows.lifecycle.watch import WatchConfig, write_watch
    from vec_inf_flows.scripts.render import WATCH_FILENAME, watch_source

    jobdir.atomic_write(directory / WATCH_FILENAME, watch_source())
    write_watch(directory, WatchConfig(lease=lease, idle_timeout=None, health_grace=None))


def _router_record(
    record: GroupRecord, rspec: RouterSpec, job_id: str, job_name: str, paths: JobPaths
) -> dict[str, Any]:
    return {
        "model_name": f"{record.model_name} (router)",
        "role": Role.ROUTER.value,
        "job_id": job_id,
        "job_name": job_name,
        "job_dir": str(paths.directory),
        "out_file": str(paths.out),
        "err_file": str(paths.err),
        "policy": rspec.policy,
        "python": rspec.python,
        "labels": {GROUP_LABEL: record.group_id},
        "launched_at": time.time(),
    }


def _undo(backend: Backend, owner: VecInfClient, job_id: str, paths: JobPaths) -> None:
    with contextlib.suppress(VecInfError):  # the original error is the one to report
        backend.cancel([job_id])
    shutil.rmtree(paths.directory, ignore_errors=True)
    jobdir.index_link(owner.index_root, job_id).unlink(missing_ok=True)
