"""The on-disk layout of a job: ``$log_dir/$family/$model.$id/$model.$id.{slurm,json,out,err}``.

Everything here writes atomically (temp file in the same directory, fsync, rename) with modes
that are never world-writable, so a reader never sees half a file and two launches never
clobber each other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX_DIR = ".jobs"  # $log_dir/.jobs/<job_id> -> symlink to the job directory


@dataclass(frozen=True)
class JobPaths:
    directory: Path
    stem: str  # "<model>.<job_id>"

    @classmethod
    def for_job(cls, log_dir: str | Path, family: str, model: str, job_id: str) -> JobPaths:
        stem = f"{model}.{job_id}"
        return cls(Path(log_dir) / family / stem, stem)

    @property
    def script(self) -> Path:
        return self.directory / f"{self.stem}.slurm"

    @property
    def json(self) -> Path:
        return self.directory / f"{self.stem}.json"

    @property
    def out(self) -> Path:
        return self.directory / f"{self.stem}.out"

    @property
    def err(self) -> Path:
        return self.directory / f"{self.stem}.err"

    @property
    def secrets(self) -> Path:
        return self.directory / ".secrets.env"

    @property
    def shutdown_marker(self) -> Path:
        return self.directory / "shutdown_requested"

    @property
    def exit_marker(self) -> Path:
        """Written by the job-side launcher with the engine's exit code when it ends."""
        return self.directory / "engine.exit"


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    raw = data.encode() if isinstance(data, str) else data
    import tempfile  # here, not at the top: ``status`` never writes and need not load it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: dict[str, Any], mode: int = 0o644) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", mode)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def index_link(log_dir: str | Path, job_id: str) -> Path:
    return Path(log_dir) / INDEX_DIR / job_id


def register(log_dir: str | Path, job_id: str, directory: Path) -> None:
    """Point ``$log_dir/.jobs/<job_id>`` at the job directory (replacing any stale link)."""
    link = index_link(log_dir, job_id)
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = link.with_name(f".{job_id}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(directory, link.parent))
    os.replace(tmp, link)


def lookup(log_dir: str | Path, job_id: str) -> Path | None:
    link = index_link(log_dir, job_id)
    try:
        target = link.resolve(strict=True)
    except OSError:
        return None
    return target if target.is_dir() else None


def state_home() -> Path:
    """Where the job index lives (``VEC_INF_FLOWS_HOME``, default ``~/.vec-inf-flows``).

    The index maps job ids to job directories whatever log dir each launch used, so ``status``
    needs nothing but the id.
    """
    return Path(os.environ.get("VEC_INF_FLOWS_HOME") or Path.home() / ".vec-inf-flows").expanduser()
