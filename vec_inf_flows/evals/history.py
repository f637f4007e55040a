"""The history of an evaluation across runs: one JSON line per run in ``history.jsonl``.

Appended under an exclusive ``flock`` with one ``write`` of one whole line (a torn tail left by
a crash is closed first, so it never swallows the next entry), ``fsync``ed, created 0644 and
never left group- or world-writable. A retried flow run appends again; readers take the last
entry of each run.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError


class HistoryRow(BaseModel):
    """One model on one dataset in one run."""

    model_config = ConfigDict(frozen=True)

    model: str
    dataset: str
    status: str
    scorer: str | None = None
    score: float | None = None
    scored: int = 0
    ok: int = 0
    failed: int = 0
    total: int = 0

    @property
    def key(self) -> tuple[str, str, str | None]:
        """What must match for two runs' scores to be compared."""
        return (self.model, self.dataset, self.scorer)


class HistoryEntry(BaseModel):
    """One run of an evaluation: when, where its files are, and each pair's outcome."""

    model_config = ConfigDict(frozen=True)

    evaluation: str
    flow_run_id: str
    started_at: datetime
    finished_at: datetime
    folder: str
    rows: list[HistoryRow]


def read_history(path: str | Path) -> list[HistoryEntry]:
    """Every readable entry, oldest first; a torn or foreign line is skipped, not fatal."""
    entries: list[HistoryEntry] = []
    source = Path(path)
    if not source.is_file():
        return entries
    with source.open("rb") as handle:
        for raw in handle:
            try:
                entries.append(HistoryEntry.model_validate_json(raw))
            except (ValidationError, ValueError):
                continue
    return entries


def previous_entry(path: str | Path, flow_run_id: str) -> HistoryEntry | None:
    """The latest entry of another run (this run's own earlier attempts do not count)."""
    others = [entry for entry in read_history(path) if entry.flow_run_id != flow_run_id]
    return others[-1] if others else None


def append_entry(path: str | Path, entry: HistoryEntry) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry.model_dump(mode="json"), ensure_ascii=False) + "\n").encode()
    descriptor = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        mode = os.fstat(descriptor).st_mode & 0o777
        if mode & 0o022:
            os.fchmod(descriptor, mode & ~0o022)
        size = os.lseek(descriptor, 0, os.SEEK_END)
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line  # close a torn last line rather than extend it
        written = os.write(descriptor, line)
        while written < len(line):
            written += os.write(descriptor, line[written:])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)  # releases the lock
