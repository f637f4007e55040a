"""The result file: appends, resume, torn-line repair, refusing foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.record import RecordError, ResultRecord
from vec_inf_flows.workload.store import ResultStore


def record(record_id: str, line: int, ok: bool = True) -> ResultRecord:
    error = None if ok else RecordError(type="http_error", message="nope", status=400)
    return ResultRecord(id=record_id, line=line, ok=ok, attempts=1, error=error)


def test_records_are_whole_lines_and_reopen_remembers_ids(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with ResultStore.open(path, fsync_every=2) as store:
        store.append(record("a", 1))
        store.append(record("b", 2, ok=False))
        assert "a" in store and len(store) == 2

    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    assert json.loads(lines[1])["error"] == {"type": "http_error", "message": "nope", "status": 400}
    assert "error" not in json.loads(lines[0])  # absent, not null

    with ResultStore.open(path) as again:
        assert again.line_of("b") == 2 and again.repaired_bytes == 0
        with pytest.raises(ValueError, match="already"):
            again.append(record("a", 1))
        again.append(record("c", 3))
    assert len(path.read_text().splitlines()) == 3


def test_a_torn_last_line_is_cut_away(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with ResultStore.open(path) as store:
        store.append(record("a", 1))
        store.append(record("b", 2))
    whole = path.read_bytes()
    torn = record("c", 3).to_line()[:25]
    path.write_bytes(whole + torn)

    with ResultStore.open(path) as store:
        assert store.repaired_bytes == len(torn)
        assert "c" not in store and len(store) == 2
        store.append(record("c", 3))
    assert path.read_bytes() == whole + record("c", 3).to_line()


def test_a_cut_line_that_still_parses_is_kept_only_with_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    line = record("a", 1).to_line()
    path.write_bytes(line[:-1])  # complete JSON, no newline: the write did not finish
    with ResultStore.open(path) as store:
        assert len(store) == 0 and store.repaired_bytes == len(line) - 1
    assert path.read_bytes() == b""


def test_garbage_in_the_middle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(record("a", 1).to_line() + b"hello\n" + record("b", 2).to_line())
    with pytest.raises(ConfigError, match=r"out.jsonl:2 is not a result record"):
        ResultStore.open(path)


def test_a_repeated_id_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(record("a", 1).to_line() * 2)
    with pytest.raises(ConfigError, match="repeats id 'a'"):
        ResultStore.open(path)
