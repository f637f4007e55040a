"""Streaming the input file: one record at a time, each with its line number and byte offset.

Nothing here holds more than one record, so a file of any size costs the same memory. Byte
offsets let a chunk start reading where it begins instead of re-reading the file from the top.
A bad record becomes an ``InputItem`` carrying a problem; it never stops the records after it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.batch_format import batch_request, is_batch_record
from vec_inf_flows.workload.request import InputLineError, WorkRequest, build_request, derived_id


class InputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


_SUFFIXES = {".jsonl": InputFormat.JSONL, ".ndjson": InputFormat.JSONL, ".csv": InputFormat.CSV}
_JSON_COLUMNS = frozenset({"messages"})  # CSV cells that must hold JSON
# CSV cells always taken verbatim (a reference "007" must stay "007", not become 7)
_TEXT_COLUMNS = frozenset({"id", "prompt", "input", "model", "expected", "reference"})
# A JSON escape of a UTF-16 surrogate: only lines holding one need the full encoding check.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def detect_format(path: Path, explicit: str | None = None) -> InputFormat:
    if explicit is not None:
        try:
            return InputFormat(explicit.lower())
        except ValueError:
            raise ConfigError(f"Unknown input format {explicit!r}: use jsonl or csv.") from None
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"Cannot tell the format of {path} from its name: pass jsonl or csv.")
    return found


@dataclass(frozen=True)
class Chunk:
    """A run of ``count`` consecutive records starting at ``start_line`` / ``start_offset``."""

    # pydantic reads the attribute docstrings below as descriptions (task-parameter forms).
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}

    index: int
    """Position of the chunk in the dataset, from 0."""
    start_line: int
    """Line number of its first record, from 1."""
    start_offset: int
    """Byte offset of its first record in the file."""
    count: int
    """Records in the chunk."""

    @property
    def name(self) -> str:
        return f"chunk-{self.index:05d}"


@dataclass(frozen=True)
class InputItem:
    """One input record: a request to send, or the problem that stops it being one."""

    line: int
    id: str
    derived_id: str  # line number + content hash: the key of this line's error record
    request: WorkRequest | None
    problem: str | None = None


@dataclass(frozen=True)
class _RawRecord:
    line: int
    offset: int
    raw: bytes  # what the derived id hashes
    fields: dict[str, Any] | None  # None for JSONL until decoded
    problem: str | None = None


def iter_chunks(path: str | Path, size: int, input_format: str | None = None) -> Iterator[Chunk]:
    """Split the input into chunks of ``size`` records (the last may be shorter)."""
    if size < 1:
        raise ConfigError(f"Chunk size must be at least 1, got {size}.")
    source = Path(path)
    fmt = detect_format(source, input_format)
    index = 0
    start: _RawRecord | None = None
    count = 0
    for record in _scan(source, fmt):
        if start is None:
            start = record
        count += 1
        if count == size:
            yield Chunk(index, start.line, start.offset, count)
            index, start, count = index + 1, None, 0
    if start is not None:
        yield Chunk(index, start.line, start.offset, count)


def read_items(
    path: str | Path,
    *,
    defaults: Mapping[str, Any] | None = None,
    input_format: str | None = None,
    chunk: Chunk | None = None,
) -> Iterator[InputItem]:
    """Yield the records of the file (or of one chunk of it) as requests or problems."""
    source = Path(path)
    fmt = detect_format(source, input_format)
    applied = dict(defaults or {})
    records = (
        _scan(source, fmt, chunk.start_offset, chunk.start_line) if chunk else _scan(source, fmt)
    )
    for produced, record in enumerate(records):
        if chunk is not None and produced >= chunk.count:
            return
        yield _to_item(record, applied)


def _to_item(record: _RawRecord, defaults: Mapping[str, Any]) -> InputItem:
    fallback = derived_id(record.line, record.raw)
    fields = record.fields
    problem = record.problem
    if fields is None and problem is None:
        fields, problem = _decode_json_line(record.raw)
    if problem is None and fields is not None and _SURROGATE_ESCAPE.search(record.raw):
        problem = _unencodable(fields)
    if problem is not None or fields is None:
        return InputItem(record.line, fallback, fallback, None, f"line {record.line}: {problem}")
    try:
        if is_batch_record(fields):
            request = batch_request(fields, line=record.line, defaults=defaults)
        else:
            request = build_request(
                fields, line=record.line, fallback_id=fallback, defaults=defaults
            )
    except InputLineError as error:
        return InputItem(record.line, fallback, fallback, None, f"line {record.line}: {error}")
    return InputItem(record.line, request.id, fallback, request)


def _unencodable(fields: dict[str, Any]) -> str | None:
    """JSON may escape half a surrogate pair (``"\\ud83d"``): valid JSON, but text no server
    can be sent, so the line becomes an error record instead of crashing the send."""
    try:
        json.dumps(fields, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return f"not valid UTF-8 after JSON decoding (lone surrogate {error.object[error.start]!r})"
    return None


def _decode_json_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(raw)
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


def _scan(
    path: Path, fmt: InputFormat, start_offset: int = 0, start_line: int = 1
) -> Iterator[_RawRecord]:
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ConfigError(f"Cannot read input {path}: {error.strerror}.") from None
    with handle:
        if fmt is InputFormat.JSONL:
            yield from _scan_jsonl(handle, start_offset, start_line)
        else:
            yield from _scan_csv(handle, start_offset, start_line)


def _scan_jsonl(handle: BinaryIO, offset: int, line: int) -> Iterator[_RawRecord]:
    handle.seek(offset)
    for raw in handle:
        if raw.strip():
            yield _RawRecord(line, offset, raw.rstrip(b"\r\n"), None)
        offset += len(raw)
        line += 1


class _LineSource:
    """Feeds ``csv.reader`` one decoded line at a time while counting lines and bytes.

    ``csv.reader`` pulls exactly the lines one record needs, so the position before each
    ``next`` is where the next record starts (quoted fields may span several lines).
    """

    def __init__(self, handle: BinaryIO, offset: int, line: int) -> None:
        self.handle = handle
        self.offset = offset
        self.line = line  # the number of the next line to be read
        self.bad_encoding = False

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        raw = self.handle.readline()
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.line += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_encoding = True
            return raw.decode("utf-8", errors="replace")


def _scan_csv(handle: BinaryIO, offset: int, line: int) -> Iterator[_RawRecord]:
    source = _LineSource(handle, 0, 1)
    reader = csv.reader(source)
    header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
    if not header:
        return
    if offset > source.offset:
        handle.seek(offset)
        source.offset, source.line = offset, line
    while True:
        record_line, record_offset = source.line, source.offset
        source.bad_encoding = False
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield _RawRecord(record_line, record_offset, b"", None, f"bad CSV ({error})")
            continue
        if not any(cell.strip() for cell in row):
            continue
        raw = json.dumps(row, ensure_ascii=False).encode()
        fields, problem = _csv_fields(header, row)
        if source.bad_encoding:
            fields, problem = None, "not valid UTF-8"
        yield _RawRecord(record_line, record_offset, raw, fields, problem)


def _csv_fields(header: list[str], row: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    if len(row) > len(header):
        return None, f"{len(row)} fields but the header names {len(header)}"
    fields: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        if not name or cell == "":
            continue
        if name in _TEXT_COLUMNS:
            fields[name] = cell
        elif name in _JSON_COLUMNS:
            try:
                fields[name] = json.loads(cell)
            except json.JSONDecodeError:
                return None, f"column {name!r} is not valid JSON"
        else:
            fields[name] = _scalar(cell)
    return fields, None


def _scalar(cell: str) -> Any:
    """Numbers, booleans and JSON values as themselves; anything else as the text it is."""
    try:
        return json.loads(cell)
    except json.JSONDecodeError:
        return cell
