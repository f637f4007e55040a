"""Held jobs a failed launch could neither release nor cancel: written down, retried, settled.

A launch submits its job held, writes the job dir, then releases it. If that fails and the
cancel fails too (the controller is restarting), the job would sit in the queue forever with
nobody knowing. So it is recorded here (``$VEC_INF_FLOWS_HOME/held-jobs.json``), its job dir is
kept, and the next command that talks to Slurm cancels it again; only once the cancel succeeded
is the job dir removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import VecInfError

log = logging.getLogger("vec_inf_flows.journal")

JOURNAL_FILE = "held-jobs.json"


@dataclass(frozen=True)
class HeldJob:
    job_id: str
    backend: str  # "slurm" or "local": their ids are separate spaces
    job_dir: str | None  # removed once the job is cancelled
    index_root: str  # where its index link lives
    reason: str
    recorded_at: float


class HeldJobJournal:
    """The journal of one state home (one file, changed under an ``flock``)."""

    def __init__(self, state_home: Path) -> None:
        self.path = state_home / JOURNAL_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(self.path.with_name(f".{JOURNAL_FILE}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def entries(self) -> list[HeldJob]:
        data = jobdir.read_json(self.path) or {}
        jobs = data.get("jobs")
        found: list[HeldJob] = []
        for item in jobs if isinstance(jobs, list) else []:
            if isinstance(item, dict) and item.get("job_id"):
                found.append(
                    HeldJob(
                        job_id=str(item["job_id"]),
                        backend=str(item.get("backend", "slurm")),
                        job_dir=item.get("job_dir"),
                        index_root=str(item.get("index_root", "")),
                        reason=str(item.get("reason", "")),
                        recorded_at=float(item.get("recorded_at") or 0.0),
                    )
                )
        return found

    def _write(self, jobs: Sequence[HeldJob]) -> None:
        if not jobs:
            self.path.unlink(missing_ok=True)
            return
        jobdir.write_json(self.path, {"jobs": [job.__dict__ for job in jobs]}, mode=0o600)

    def record(self, jobs: Sequence[HeldJob]) -> None:
        with self._locked():
            known = {(job.backend, job.job_id): job for job in self.entries()}
            known.update({(job.backend, job.job_id): job for job in jobs})
            self._write(list(known.values()))
        for job in jobs:
            log.info(
                "held job %s could not be cancelled (%s); it is recorded in %s and will be "
                "cancelled by the next command that reaches Slurm",
                job.job_id,
                job.reason,
                self.path,
            )

    def settle(self, backend: str, cancel: Callable[[Sequence[str]], None]) -> list[str]:
        """Cancel every job recorded for ``backend``; forget (and clean up after) those
        cancelled. Cheap when the journal is empty: one ``stat``."""
        if not self.path.exists():
            return []
        with self._locked():
            entries = self.entries()
            pending = [job for job in entries if job.backend == backend]
            if not pending:
                return []
            ids = [job.job_id for job in pending]
            try:
                cancel(ids)
            except VecInfError as error:
                log.warning("held job(s) %s still not cancelled: %s", ", ".join(ids), error)
                return []
            for job in pending:
                discard_job_files(job.job_dir, job.index_root, job.job_id)
            self._write([job for job in entries if job.backend != backend])
        log.warning("cancelled held job(s) left by an earlier failed launch: %s", ", ".join(ids))
        return ids


def discard_job_files(job_dir: str | None, index_root: str, job_id: str) -> None:
    """Remove what a launch that never started wrote: no job dir points at a dead job."""
    if job_dir:
        shutil.rmtree(job_dir, ignore_errors=True)
    if index_root:
        jobdir.index_link(index_root, job_id).unlink(missing_ok=True)


def abandon_launch(
    backend: Backend,
    journal: HeldJobJournal,
    index_root: Path,
    leader: str,
    launches: Sequence[tuple[str, Path]],
    error: BaseException,
) -> str | None:
    """A launch failed after submitting: cancel the held job and remove what it wrote
    (``launches``: each server's job id and dir). If the cancel fails too, keep the job dirs and
    record the job, so the next command that reaches Slurm cancels it; return a note saying so
    for the launch's error (the original error matters more)."""
    try:
        backend.cancel([leader])
    except VecInfError as cancel_error:
        reason = f"{' '.join(str(error).split())[:200]}; cancel: {cancel_error}"
        journal.record(
            [
                held_job(job_id, backend.name, str(directory), index_root, reason)
                for job_id, directory in launches
            ]
        )
        return (
            f"held job {leader} could not be cancelled either ({cancel_error}); it is "
            "recorded and the next command that reaches Slurm cancels it"
        )
    for job_id, directory in launches:
        discard_job_files(str(directory), str(index_root), job_id)
    return None


def add_note(error: BaseException, note: str | None) -> None:
    """Append to the one line the CLI prints (our errors print their first argument)."""
    if note is None:
        return
    if isinstance(error, VecInfError) and error.args and isinstance(error.args[0], str):
        error.args = (f"{error.args[0]} ({note})", *error.args[1:])
    else:
        log.warning("%s", note)


def held_job(
    job_id: str, backend: str, job_dir: str | None, index_root: Path, reason: str
) -> HeldJob:
    return HeldJob(job_id, backend, job_dir, str(index_root), reason, time.time())
