"""An evaluation's files: run folders found again by run id, the history appended safely from
many processes, regressions computed against the previous run of another flow run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals.history import (
    HistoryEntry,
    HistoryRow,
    append_entry,
    previous_entry,
    read_history,
)
from vec_inf_flows.evals.regression import regressions, score_changes
from vec_inf_flows.evals.run_folder import check_distinct, check_name, dataset_labels, run_folder

NOW = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


def entry(run_id: str, score: float | None, scorer: str | None = "auto") -> HistoryEntry:
    row = HistoryRow(model="m", dataset="d.jsonl", status="ok", scorer=scorer, score=score)
    return HistoryEntry(
        evaluation="nightly",
        flow_run_id=run_id,
        started_at=NOW,
        finished_at=NOW,
        folder=f"/runs/{run_id}",
        rows=[row],
    )


def test_a_run_folder_is_found_again_by_its_run_id(tmp_path: Path) -> None:
    first = run_folder(tmp_path, "nightly", "run-1", NOW)
    assert first == tmp_path / "nightly" / "20260504T020000Z-run-1"
    assert run_folder(tmp_path, "nightly", "run-1") == first  # a retry, a day later: same folder
    assert run_folder(tmp_path, "nightly", "run-2", NOW) != first


def test_dataset_labels_stay_unique_and_names_are_folder_safe() -> None:
    labels = dataset_labels(["/a/prompts.jsonl", "/b/prompts.jsonl", "/c/q a.csv"])
    assert list(labels.values()) == ["prompts", "prompts-2", "q_a"]
    with pytest.raises(ConfigError, match="must be 1-100 letters"):
        check_name("../etc")
    with pytest.raises(ConfigError, match=r"datasets lists '\./d\.jsonl' twice"):
        check_distinct(["m"], ["d.jsonl", "./d.jsonl"])


def test_history_survives_a_torn_line_and_is_never_world_writable(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_entry(path, entry("run-1", 0.8))
    with path.open("ab") as handle:
        handle.write(b'{"evaluation": "nightly", "flow_run')  # a crash mid-write
    os.chmod(path, 0o666)
    append_entry(path, entry("run-2", 0.6))

    assert [e.flow_run_id for e in read_history(path)] == ["run-1", "run-2"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_appends_from_many_processes_are_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from vec_inf_flows.evals.history import HistoryEntry, HistoryRow, append_entry\n"
        "now = datetime.now(UTC)\n"
        "rows = [HistoryRow(model='m' * 2000, dataset='d', status='ok')]\n"
        "for n in range(25):\n"
        "    append_entry(sys.argv[1], HistoryEntry(evaluation='e',"
        " flow_run_id=f'{sys.argv[2]}-{n}', started_at=now, finished_at=now, folder='f',"
        " rows=rows))\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", code, str(path), f"p{k}"]) for k in range(4)]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    lines = path.read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["evaluation"] == "e" for line in lines)


def test_the_previous_run_is_another_flow_run(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for item in (entry("run-1", 0.9), entry("run-2", 0.5), entry("run-2", 0.7)):
        append_entry(path, item)  # run-2 was retried: filed twice

    previous = previous_entry(path, "run-3")
    assert previous is not None and previous.rows[0].score == 0.7  # the latest entry
    before_retry = previous_entry(path, "run-2")
    assert before_retry is not None and before_retry.flow_run_id == "run-1"


def test_regressions_compare_the_same_pair_and_scorer_only() -> None:
    changes = score_changes(entry("now", 0.6), entry("before", 0.9))
    assert [(c.previous_score, c.drop) for c in changes] == [(0.9, 0.3)]
    assert regressions(changes, threshold=0.25) == changes
    assert regressions(changes, threshold=0.3) == []
    assert score_changes(entry("now", 0.6, "numeric"), entry("before", 0.9)) == []
    assert score_changes(entry("now", None), entry("before", 0.9)) == []
    assert score_changes(entry("now", 0.6), None) == []
