"""On-disk records of local jobs: ``<state_dir>/<job_id>/`` with one file per writer.

Each fact has its own file, written once and atomically by the only party that knows it: the
submitter (``job.json``, ``script.sh``), the releaser (``started.json``), the canceller
(``cancelled.json``) and the job's supervisor (``exit.json``). Nobody rewrites another's file,
so there is no read-modify-write race between a CLI that exits and a job that keeps running.
Id allocation and the held -> started / held -> cancelled transitions take one ``flock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vec_inf_flows.jobdir import atomic_write, read_json, write_json

JOB_FILE = "job.json"
SCRIPT_FILE = "script.sh"
STARTED_FILE = "started.json"
EXIT_FILE = "exit.json"
CANCELLED_FILE = "cancelled.json"
_LOCK_FILE = ".lock"
_COUNTER_FILE = "next_id"


@dataclass(frozen=True)
class Started:
    pgid: int  # the supervisor's pid: it leads the job's session and process group
    start_time: float
    node: str
    boot_id: str | None  # a reboot ends every job; a pgid from before it means nothing
    leader_start_ticks: int | None  # tells our supervisor from a later process with its pid


@dataclass(frozen=True)
class Ended:
    exit_code: int  # as Popen reports it: negative for "killed by signal N"
    end_time: float


@dataclass(frozen=True)
class StoredJob:
    job_id: str
    name: str
    submit_time: float
    submit_dir: str
    started: Started | None
    ended: Ended | None
    cancel_time: float | None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _started(data: dict[str, Any] | None) -> Started | None:
    if data is None or not isinstance(data.get("pgid"), int):
        return None
    return Started(
        pgid=data["pgid"],
        start_time=float(data.get("start_time", 0.0)),
        node=str(data.get("node", "localhost")),
        boot_id=data.get("boot_id"),
        leader_start_ticks=_int_or_none(data.get("leader_start_ticks")),
    )


def _ended(data: dict[str, Any] | None) -> Ended | None:
    if data is None or not isinstance(data.get("exit_code"), int):
        return None
    return Ended(exit_code=data["exit_code"], end_time=float(data.get("end_time", 0.0)))


def write_exit(job_dir: Path, exit_code: int, end_time: float) -> None:
    """The supervisor's one write; kept here so writer and reader agree on the format."""
    write_json(job_dir / EXIT_FILE, {"exit_code": exit_code, "end_time": end_time})


class JobStore:
    """The state directory of the local backend."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across threads and processes (``flock`` locks an open file description)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor drops the lock

    def create(self, script: str, name: str) -> str:
        """Allocate the next id and record the job; ids only ever grow, even if dirs vanish."""
        with self.locked():
            next_id = self._next_id()
            while self.job_dir(str(next_id)).exists():
                next_id += 1
            job_id = str(next_id)
            directory = self.job_dir(job_id)
            directory.mkdir(mode=0o700)
            atomic_write(directory / SCRIPT_FILE, script, mode=0o600)
            record = {"job_id": job_id, "name": name, "submit_time": time.time()}
            record["submit_dir"] = os.getcwd()
            write_json(directory / JOB_FILE, record, mode=0o600)
            atomic_write(self.root / _COUNTER_FILE, f"{next_id + 1}\n", mode=0o600)
        return job_id

    def _next_id(self) -> int:
        try:
            return max(1, int((self.root / _COUNTER_FILE).read_text().strip()))
        except (OSError, ValueError):
            existing = [int(path.name) for path in self.root.iterdir() if path.name.isdigit()]
            return max(existing, default=0) + 1

    def load(self, job_id: str) -> StoredJob | None:
        directory = self.job_dir(job_id)
        job = read_json(directory / JOB_FILE)
        if job is None:
            return None
        cancelled = read_json(directory / CANCELLED_FILE)
        return StoredJob(
            job_id=job_id,
            name=str(job.get("name", "")),
            submit_time=float(job.get("submit_time", 0.0)),
            submit_dir=str(job.get("submit_dir", "/")),
            started=_started(read_json(directory / STARTED_FILE)),
            ended=_ended(read_json(directory / EXIT_FILE)),
            cancel_time=float(cancelled["time"]) if cancelled and "time" in cancelled else None,
        )

    def reload_exit(self, job: StoredJob) -> StoredJob:
        """Read the exit record again: the job may have ended since it was first read."""
        ended = _ended(read_json(self.job_dir(job.job_id) / EXIT_FILE))
        return job if ended is None else replace(job, ended=ended)

    def all_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((path.name for path in self.root.iterdir() if path.name.isdigit()), key=int)

    def script(self, job_id: str) -> Path:
        return self.job_dir(job_id) / SCRIPT_FILE

    def mark_started(self, job_id: str, started: Started) -> None:
        write_json(self.job_dir(job_id) / STARTED_FILE, started.__dict__, mode=0o600)

    def mark_cancelled(self, job_id: str) -> None:
        write_json(self.job_dir(job_id) / CANCELLED_FILE, {"time": time.time()}, mode=0o600)
