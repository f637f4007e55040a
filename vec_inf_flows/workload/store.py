"""The exactly-once result file.

Each record is one ``os.write`` of one whole line to a file opened ``O_APPEND``, so a crash
leaves at most one torn last line, never interleaved or half-written lines in the middle. On
open that torn tail is cut away and the ids already present are remembered, so a rerun skips
them: no duplicates, no gaps. ``fsync`` runs in batches, which bounds what a machine crash (not
a process crash: the page cache survives that) can lose without paying a sync per record.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from types import TracebackType

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.record import ResultRecord


class ResultStore:
    """Append-only JSONL of result records, keyed by id."""

    def __init__(self, path: Path, fsync_every: int = 256, fsync_interval_s: float = 2.0) -> None:
        self.path = path
        self.fsync_every = fsync_every
        self.fsync_interval_s = fsync_interval_s
        self.repaired_bytes = 0  # size of the torn tail removed on open
        self._done: dict[str, int] = {}  # id -> input line of its record
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._fd = -1

    @classmethod
    def open(
        cls, path: str | Path, *, fsync_every: int = 256, fsync_interval_s: float = 2.0
    ) -> ResultStore:
        store = cls(Path(path), fsync_every, fsync_interval_s)
        store._load_and_repair()
        store._fd = os.open(store.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return store

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._done

    def __len__(self) -> int:
        return len(self._done)

    def line_of(self, record_id: str) -> int | None:
        """The input line whose record holds this id, if one was written."""
        return self._done.get(record_id)

    def append(self, record: ResultRecord) -> None:
        if record.id in self._done:
            raise ValueError(f"record {record.id!r} is already in {self.path}")
        data = record.to_line()
        written = os.write(self._fd, data)
        while written < len(data):  # a short write to a regular file: finish the line
            written += os.write(self._fd, data[written:])
        self._done[record.id] = record.line
        self._unsynced += 1
        if (
            self._unsynced >= self.fsync_every
            or time.monotonic() - self._last_sync >= self.fsync_interval_s
        ):
            self.sync()

    def sync(self) -> None:
        if self._fd >= 0 and self._unsynced:
            os.fsync(self._fd)
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def _load_and_repair(self) -> None:
        """Read the ids already written; cut a torn last line (a crash mid-write)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        good_end = 0
        pending_error: str | None = None
        with handle:
            for number, raw in enumerate(handle, start=1):
                if pending_error is not None:  # a bad line followed by more lines: not a tear
                    raise ConfigError(pending_error)
                parsed = _parse_record_line(raw)
                if parsed is None:
                    pending_error = (
                        f"{self.path}:{number} is not a result record; refusing to append to a "
                        "file this tool did not write."
                    )
                    continue
                record_id, line = parsed
                if record_id in self._done:
                    raise ConfigError(f"{self.path}:{number} repeats id {record_id!r}.")
                self._done[record_id] = line
                good_end += len(raw)
            size = handle.tell()
        if size > good_end:
            self.repaired_bytes = size - good_end
            os.truncate(self.path, good_end)


def _whole_record(raw: bytes) -> dict[str, object] | None:
    """A complete line holding a JSON object, else None (a torn tail, something foreign)."""
    if not raw.endswith(b"\n"):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _parse_record_line(raw: bytes) -> tuple[str, int] | None:
    value = _whole_record(raw)
    if value is None:
        return None
    record_id, line = value.get("id"), value.get("line")
    if not isinstance(record_id, str) or not isinstance(line, int):
        return None
    return record_id, line


def _sent_and_failed(raw: bytes) -> bool:
    """A whole record of a request that was sent and finally failed (not an invalid line,
    which would fail the same way again)."""
    value = _whole_record(raw)
    return value is not None and value.get("ok") is False and bool(value.get("attempts"))


def forget_failed(path: str | Path) -> int:
    """Remove the records of requests that were sent and failed, so the next run sends them
    again; every other record stays, byte for byte. Returns how many were removed.

    Call it before a run starts, never while one writes the file: the file is rewritten aside
    and renamed over the old one (a crash leaves the old file or the new, never half of one).
    """
    source = Path(path)
    try:
        with source.open("rb") as handle:
            failed = sum(_sent_and_failed(raw) for raw in handle)
    except FileNotFoundError:
        return 0
    if not failed:
        return 0
    mode = source.stat().st_mode & 0o777 & ~0o022  # never group- or world-writable
    descriptor, temporary = tempfile.mkstemp(prefix=f".{source.name}.", dir=source.parent)
    try:
        with os.fdopen(descriptor, "wb") as out, source.open("rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n") and not _sent_and_failed(raw):
                    out.write(raw)  # a torn last line goes, as the store would cut it
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, source)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return failed
