"""Deleting old log folders: vec-inf's ``cleanup``, minus its way of losing live jobs.

The filters are vec-inf's (family, model, exact job id, job ids below a number; folders are
``<root>/<family>/<name>.<job id>``). vec-inf deleted matching folders whatever their job was
doing, and with no filter the whole log root: the JSON, logs and server address of running
servers went with it, so their status broke. Here one scheduler query says which jobs still
live, and their folders are kept (and listed); with no filter every other job folder goes,
then emptied family folders. Our job index stops pointing at what was deleted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vec_inf_flows import jobdir
from vec_inf_flows.errors import ConfigError, InvalidJobIdError
from vec_inf_flows.jobs import JobId, JobPhase, JobRecord

DEFAULT_LOG_ROOT = "~/.vec-inf-logs"
_LIVE = (JobPhase.PENDING, JobPhase.RUNNING, JobPhase.ENDING, JobPhase.UNKNOWN)


@dataclass(frozen=True)
class CleanupFilter:
    model_family: str | None = None
    model_name: str | None = None
    job_id: int | None = None
    before_job_id: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.model_family or self.model_name or self.job_id or self.before_job_id)

    def keeps(self, name: str, job: JobId) -> bool:
        """Whether a job folder named ``<name>.<job>`` is selected."""
        if self.model_name and name != self.model_name:
            return False
        if self.job_id is not None and job.main != self.job_id:
            return False
        return self.before_job_id is None or job.main < self.before_job_id


@dataclass
class CleanupResult:
    matched: list[Path] = field(default_factory=list)  # deleted (or, in a dry run, to delete)
    kept: list[Path] = field(default_factory=list)  # matched, but their job still runs


def default_log_root() -> Path:
    return Path(os.environ.get("VEC_INF_LOG_DIR") or DEFAULT_LOG_ROOT).expanduser()


def job_folders(root: Path, selection: CleanupFilter) -> list[tuple[Path, JobId]]:
    """Folders ``<root>/<family>/<name>.<job id>`` the filter selects, sorted."""
    if not root.is_dir():
        raise ConfigError(f"Log directory does not exist: {root}")
    found: list[tuple[Path, JobId]] = []
    for family in sorted(path for path in root.iterdir() if path.is_dir()):
        if selection.model_family and family.name != selection.model_family:
            continue
        for folder in sorted(path for path in family.iterdir() if path.is_dir()):
            name, _, number = folder.name.rpartition(".")
            try:
                job = JobId.parse(number)
            except InvalidJobIdError:
                continue
            if name and selection.keeps(name, job):
                found.append((folder, job))
    return found


def live_job_ids(records: Iterable[JobRecord]) -> set[int]:
    return {JobId.parse(record.job_id).main for record in records if record.phase in _LIVE}


def clean_logs(
    root: Path,
    selection: CleanupFilter,
    live: set[int],
    *,
    dry_run: bool,
    index_root: Path | None = None,
) -> CleanupResult:
    """Delete (or list) the selected folders of jobs that no longer run."""
    result = CleanupResult()
    for folder, job in job_folders(root, selection):
        (result.kept if job.main in live else result.matched).append(folder)
    if dry_run:
        return result
    deleted = {folder.resolve() for folder in result.matched}
    for folder in result.matched:
        shutil.rmtree(folder)
    if selection.empty or (selection.model_family and not selection.model_name):
        for family in {folder.parent for folder in result.matched}:
            if family.is_dir() and not any(family.iterdir()):
                family.rmdir()
    if index_root is not None:
        _forget(index_root, deleted)
    return result


def _forget(index_root: Path, deleted: set[Path]) -> None:
    """Remove index links that pointed into deleted folders."""
    index = index_root / jobdir.INDEX_DIR
    if not index.is_dir() or not deleted:
        return
    for link in index.iterdir():
        try:
            target = Path(os.path.realpath(link.parent), os.readlink(link))
            target = Path(os.path.normpath(target))
        except OSError:
            continue
        if target in deleted:
            link.unlink(missing_ok=True)
