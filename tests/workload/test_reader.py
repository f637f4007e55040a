"""Reading requests: JSONL and CSV, ids, defaults, bad lines, chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.reader import iter_chunks, read_items
from vec_inf_flows.workload.request import RequestKind


def write_jsonl(path: Path, rows: list[object | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_kinds_ids_and_defaults(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5},
            {"prompt": "Paris is", "max_tokens": 3},
            {"id": 7, "input": ["x", "y"]},
        ],
    )
    items = list(read_items(source, defaults={"model": "m", "max_tokens": 16, "temperature": 0}))

    chat, completion, embedding = (item.request for item in items)
    assert chat is not None and completion is not None and embedding is not None
    assert (chat.id, chat.kind, chat.line) == ("a", RequestKind.CHAT, 1)
    assert chat.body == {
        "model": "m",
        "max_tokens": 16,
        "temperature": 0.5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert completion.kind is RequestKind.COMPLETION and completion.body["max_tokens"] == 3
    assert completion.id.startswith("line2-")
    # Generation defaults do not leak into embedding requests; the model does.
    assert embedding.id == "7" and embedding.body == {"model": "m", "input": ["x", "y"]}
    assert embedding.kind.path == "/embeddings"


def test_derived_ids_are_stable_and_depend_on_content(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "one"}, {"prompt": "two"}])
    again = [item.id for item in read_items(first, defaults={"model": "m"})]
    assert again == [item.id for item in read_items(first, defaults={"model": "m"})]
    changed = write_jsonl(tmp_path / "b.jsonl", [{"prompt": "one"}, {"prompt": "TWO"}])
    other = [item.id for item in read_items(changed, defaults={"model": "m"})]
    assert other[0] == again[0] and other[1] != again[1]


def test_bad_lines_are_reported_with_their_line_number_and_do_not_stop_the_rest(
    tmp_path: Path,
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"prompt": "ok"},
            "{not json",
            "",
            "[1, 2]",
            {"id": "x"},
            {"prompt": "p", "messages": [{"role": "user", "content": "c"}]},
            {"messages": "hello"},
            {"id": True, "prompt": "p"},
            {"prompt": "last"},
        ],
    )
    items = list(read_items(source, defaults={"model": "m"}))

    problems = {item.line: item.problem for item in items if item.problem}
    assert [item.line for item in items if item.request] == [1, 9]
    assert sorted(problems) == [2, 4, 5, 6, 7, 8]  # line 3 is blank: not a record
    assert problems[2] is not None and problems[2].startswith("line 2: not valid JSON")
    assert problems[4] == "line 4: expected a JSON object, got list"
    assert problems[5] == "line 5: needs one of 'messages', 'prompt' or 'input'"
    assert problems[6] == "line 6: has both 'messages' and 'prompt'; use exactly one"
    assert problems[7] == "line 7: 'messages' must be a non-empty list"
    assert problems[8] == "line 8: 'id' must be a string or an integer, got bool"
    # A bad record is keyed by its derived id, even when it named one.
    bad = next(item for item in items if item.line == 5)
    assert bad.id == bad.derived_id and bad.id.startswith("line5-")


def test_missing_model_is_an_input_problem(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "p"}, {"prompt": "q", "model": "x"}])
    items = list(read_items(source))
    assert items[0].problem == "line 1: no model: give 'model' in the record or as a default"
    assert items[1].request is not None and items[1].request.body["model"] == "x"


def test_csv_columns_types_and_multiline_cells(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "id,prompt,max_tokens,temperature,messages,stop\n"
        'r1,"two\nlines",5,0.2,,\n'
        'r2,,,,"[{""role"": ""user"", ""content"": ""hi""}]",END\n'
        "r3,007,,,,\n"
        'r4,,,,"[broken",\n'
        "r5,a,b,c,d,e,f\n"
        ",hello,,,,\n"
    )
    items = list(read_items(source, defaults={"model": "m"}))

    assert [item.line for item in items] == [2, 4, 5, 6, 7, 8]  # r1 spans lines 2-3
    r1, r2, r3 = (item.request for item in items[:3])
    assert r1 is not None and r1.body["prompt"] == "two\nlines"
    assert (r1.body["max_tokens"], r1.body["temperature"]) == (5, 0.2)
    assert r2 is not None and r2.kind is RequestKind.CHAT and r2.body["stop"] == "END"
    assert r3 is not None and r3.body["prompt"] == "007"  # prompts stay text
    assert items[3].problem == "line 6: column 'messages' is not valid JSON"
    assert items[4].problem == "line 7: 7 fields but the header names 6"
    assert items[5].request is not None and items[5].id.startswith("line8-")


def test_chunks_cover_every_record_once_from_their_offsets(tmp_path: Path) -> None:
    rows: list[object | str] = [{"id": f"r{n}", "prompt": f"p{n}"} for n in range(10)]
    rows.insert(4, "")
    source = write_jsonl(tmp_path / "in.jsonl", rows)

    chunks = list(iter_chunks(source, 4))
    assert [(c.index, c.count, c.start_line) for c in chunks] == [(0, 4, 1), (1, 4, 6), (2, 2, 10)]
    seen = [
        item.id
        for chunk in chunks
        for item in read_items(source, defaults={"model": "m"}, chunk=chunk)
    ]
    assert seen == [f"r{n}" for n in range(10)]
    middle = list(read_items(source, defaults={"model": "m"}, chunk=chunks[1]))
    assert [item.line for item in middle] == [6, 7, 8, 9]


def test_csv_chunks_resume_after_the_header(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,prompt\n" + "".join(f'r{n},"line\n{n}"\n' for n in range(5)))
    chunks = list(iter_chunks(source, 2))
    assert [c.start_line for c in chunks] == [2, 6, 10]
    ids = [item.id for c in chunks for item in read_items(source, defaults={"model": "m"}, chunk=c)]
    assert ids == [f"r{n}" for n in range(5)]


def test_unknown_format_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot tell the format"):
        list(read_items(tmp_path / "in.txt"))
    with pytest.raises(ConfigError, match="Cannot read input"):
        list(read_items(tmp_path / "absent.jsonl"))
    with pytest.raises(ConfigError, match="at least 1"):
        list(iter_chunks(tmp_path / "absent.jsonl", 0))
