"""The checks a run makes on its files before anything is launched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.checks import check_dataset, check_output_dir, check_output_file

from .conftest import write_requests


def test_a_request_file_passes_even_with_a_bad_line_among_good_ones(tmp_path: Path) -> None:
    good = write_requests(tmp_path / "in.jsonl", 3)
    with good.open("a") as handle:
        handle.write("not json\n")
    csv = tmp_path / "in.csv"
    csv.write_text('id,prompt\na,"hello"\n')

    assert check_dataset(good) == good
    assert check_dataset(csv) == csv


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (None, "missing.jsonl", "does not exist"),
        ("", "empty.jsonl", "has no records"),
        ("notes\nmore notes\n", "notes.jsonl", "no valid request in its first 2 records"),
        (json.dumps({"id": "a", "text": "no prompt"}) + "\n", "x.jsonl", "needs one of"),
        ("a,b\n", "table.txt", "Cannot tell the format"),
    ],
)
def test_a_file_that_is_not_requests_is_refused(
    tmp_path: Path, content: str | None, name: str, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigError, match=expected):
        check_dataset(path)


def test_outputs_need_a_writable_place(tmp_path: Path) -> None:
    check_output_file(tmp_path / "out.jsonl")
    check_output_dir(tmp_path / "new" / "deeper")  # made when the run writes
    (tmp_path / "a-file").write_text("")

    check_output_file(tmp_path / "missing" / "out.jsonl", make_directory=True)
    with pytest.raises(ConfigError, match="its directory does not exist"):
        check_output_file(tmp_path / "missing" / "out.jsonl")
    with pytest.raises(ConfigError, match="it is a directory"):
        check_output_file(tmp_path)
    with pytest.raises(ConfigError, match="is not a directory"):
        check_output_dir(tmp_path / "a-file" / "results")
