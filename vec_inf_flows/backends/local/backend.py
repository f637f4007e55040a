"""``LocalBackend``: the ``Backend`` protocol with detached local processes instead of Slurm.

The script that would go to sbatch runs as ``bash script`` under a supervisor in a new session,
with the ``SLURM_*`` variables a Slurm node would give it and its output where its
``#SBATCH --output/--error`` lines say. So a laptop or CI box runs the same launch path as a
cluster: held submission, job directory, release, status, metrics, cancel.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from vec_inf_flows.backends.local import processes
from vec_inf_flows.backends.local.directives import (
    Directives,
    check_runs_locally,
    expand_filename,
    parse_directives,
)
from vec_inf_flows.backends.local.processes import GroupProbe
from vec_inf_flows.backends.local.records import to_record
from vec_inf_flows.backends.local.store import SCRIPT_FILE, JobStore, Started, StoredJob
from vec_inf_flows.errors import ConfigError, JobNotFoundError, VecInfError
from vec_inf_flows.jobdir import state_home
from vec_inf_flows.jobs import JobId, JobRecord

logger = logging.getLogger(__name__)

SUPERVISOR_MODULE = "vec_inf_flows.backends.local.supervisor"
DEFAULT_KILL_WAIT = 5.0  # seconds between SIGTERM and SIGKILL, as Slurm's KillWait
DEFAULT_KEEP_ENDED = 300.0  # seconds an ended job stays listed, as Slurm's MinJobAge


def default_state_dir() -> Path:
    return state_home() / "local"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class LocalBackend:
    """Jobs as detached process groups on this machine, recorded under ``state_dir``."""

    name = "local"

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        kill_wait: float = DEFAULT_KILL_WAIT,
        keep_ended: float = DEFAULT_KEEP_ENDED,
    ) -> None:
        self.store = JobStore(Path(state_dir) if state_dir is not None else default_state_dir())
        self.kill_wait = kill_wait
        self.keep_ended = keep_ended

    @property
    def state_dir(self) -> Path:
        return self.store.root

    # -- submit / release ------------------------------------------------------------------

    def submit(self, script: str, job_name: str, *, hold: bool = True) -> str:
        check_runs_locally(parse_directives(script))
        job_id = self.store.create(script, job_name)
        logger.debug("local job %s (%s) submitted%s", job_id, job_name, " held" if hold else "")
        if not hold:
            self.release(job_id)
        return job_id

    def release(self, job_id: str) -> None:
        wanted = str(JobId.parse(job_id))
        with self.store.locked():
            job = self.store.load(wanted)
            if job is None:
                raise JobNotFoundError(f"Cannot release job {wanted}: no local job has this id.")
            if job.cancel_time is not None or job.started is not None or job.ended is not None:
                state = "cancelled" if job.cancel_time is not None else "already started"
                raise VecInfError(f"Cannot release job {wanted}: it is not held ({state}).")
            started = self._start(job)
            self.store.mark_started(wanted, started)
        logger.debug("local job %s started as process group %s", wanted, started.pgid)

    def _start(self, job: StoredJob) -> Started:
        directives = parse_directives(self.store.script(job.job_id).read_text())
        node = processes.node_name()
        workdir = self._workdir(job, directives)
        out_path, err_path = self._log_paths(job, directives, node, workdir)
        job_dir = self.store.job_dir(job.job_id)
        argv = [sys.executable, "-m", SUPERVISOR_MODULE, str(job_dir), str(job_dir / SCRIPT_FILE)]
        with self._open_logs(job.job_id, out_path, err_path, directives.append) as (out, err):
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=workdir,
                env=self._job_env(job, directives, node),
                start_new_session=True,
                close_fds=True,
            )
        # A long-lived caller (a flow, a test) must not collect zombie supervisors; a CLI
        # exits first, and init adopts them.
        reaper = threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True)
        reaper.start()
        leader = processes.read_stat(process.pid)
        return Started(
            pgid=process.pid,
            start_time=time.time(),
            node=node,
            boot_id=processes.boot_id(),
            leader_start_ticks=leader.start_ticks if leader is not None else None,
        )

    @staticmethod
    def _workdir(job: StoredJob, directives: Directives) -> Path:
        workdir = Path(directives.chdir or job.submit_dir).expanduser()
        if not workdir.is_dir():
            raise ConfigError(
                f"Cannot start local job {job.job_id}: its working directory {workdir} "
                "does not exist."
            )
        return workdir

    @staticmethod
    def _log_paths(
        job: StoredJob, directives: Directives, node: str, workdir: Path
    ) -> tuple[Path, Path]:
        """sbatch's defaults: ``slurm-%j.out`` in the working directory; errors go with output."""
        output = directives.output or "slurm-%j.out"
        error = directives.error or output
        user = _user()

        def expand(pattern: str) -> Path:
            name = expand_filename(
                pattern, job_id=job.job_id, job_name=job.name, node=node, user=user
            )
            return workdir / Path(name).expanduser()

        return expand(output), expand(error)

    @staticmethod
    @contextlib.contextmanager
    def _open_logs(
        job_id: str, out_path: Path, err_path: Path, append: bool
    ) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
        """Open the job's output files; the client made their directory before release."""
        for path in {out_path, err_path}:
            if not path.parent.is_dir():
                raise ConfigError(
                    f"Cannot start local job {job_id}: the directory of its log file {path} "
                    "does not exist."
                )
        mode = "ab" if append else "wb"
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(out_path, mode))
            err = out if err_path == out_path else stack.enter_context(open(err_path, mode))
            yield out, err

    @staticmethod
    def _job_env(job: StoredJob, directives: Directives, node: str) -> dict[str, str]:
        """The caller's environment, as ``sbatch --export=ALL``, plus what a Slurm node sets.

        Taken at release, never stored: it may hold tokens. Inherited ``SLURM_*`` variables
        (a CLI run inside some other job) are dropped so they cannot mislead the script.
        """
        env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
        env.update(
            {
                "SLURM_JOB_ID": job.job_id,
                "SLURM_JOBID": job.job_id,
                "SLURM_JOB_NAME": job.name,
                "SLURMD_NODENAME": node,
                "SLURM_JOB_NODELIST": node,
                "SLURM_NNODES": "1",
                "SLURM_JOB_NUM_NODES": "1",
                "SLURM_SUBMIT_DIR": job.submit_dir,
            }
        )
        if directives.cpus_per_task is not None:
            env["SLURM_CPUS_PER_TASK"] = str(directives.cpus_per_task)
        return env

    # -- queries ---------------------------------------------------------------------------

    def _records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        probe = GroupProbe()
        records: list[JobRecord] = []
        for job_id in job_ids:
            job = self.store.load(job_id)
            if job is None:
                continue
            alive = False
            if job.started is not None and job.ended is None:
                alive = job.started.boot_id == processes.boot_id() and probe.alive(
                    job.started.pgid, job.started.leader_start_ticks
                )
                if not alive:  # it may have ended between the two reads
                    job = self.store.reload_exit(job)
            records.append(to_record(job, alive))
        return records

    def query(
        self, job_ids: Sequence[str], *, submitted_after: datetime | None = None
    ) -> dict[str, JobRecord]:
        """Every stored job stays known (like sacct); ``N+M`` ids never exist locally."""
        wanted = list(dict.fromkeys(JobId.parse(job_id) for job_id in job_ids))
        ids = [str(job_id) for job_id in wanted if job_id.offset is None]
        return {record.job_id: record for record in self._records(ids)}

    def list_jobs(self, name_suffix: str | None = None) -> list[JobRecord]:
        """Jobs not ended, and those ended in the last ``keep_ended`` seconds (like squeue)."""
        records = self._records(self.store.all_ids())
        if name_suffix is not None:
            records = [record for record in records if name_suffix in record.name]
        return [record for record in records if self._still_listed(record)]

    def _still_listed(self, record: JobRecord) -> bool:
        if not record.phase.terminal:
            return True
        job = self.store.load(record.job_id)
        if job is None:
            return False
        ended_at = max(
            job.ended.end_time if job.ended else 0.0,
            job.cancel_time or 0.0,
            job.started.start_time if job.started else job.submit_time,
        )
        return time.time() - ended_at <= self.keep_ended

    def find_by_name(self, job_name: str) -> list[str]:
        matches: list[str] = []
        for job_id in self.store.all_ids():
            job = self.store.load(job_id)
            if job is not None and job.name == job_name:
                matches.append(job_id)
        return matches

    @staticmethod
    def _group_is_ours(started: Started) -> bool:
        """Never signal a group that only shares the number (after a reboot or pid reuse)."""
        if started.boot_id != processes.boot_id():
            return False
        return GroupProbe().alive(started.pgid, started.leader_start_ticks)

    # -- cancel ----------------------------------------------------------------------------

    def cancel(self, job_ids: Sequence[str]) -> None:
        """SIGTERM each job's group, SIGKILL after ``kill_wait``; returns when all are gone."""
        running: dict[int, int | None] = {}
        for wanted in dict.fromkeys(JobId.parse(job_id) for job_id in job_ids):
            if wanted.offset is not None:
                continue
            with self.store.locked():  # a release racing this cancel sees the mark
                job = self.store.load(str(wanted))
                if job is None or job.ended is not None:
                    continue
                if job.cancel_time is None:
                    self.store.mark_cancelled(job.job_id)
            if job.started is not None and self._group_is_ours(job.started):
                running[job.started.pgid] = job.started.leader_start_ticks
        if running:
            processes.terminate_groups(running, self.kill_wait)
