"""The runner process killed with SIGKILL half-way, then rerun: complete, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from testkit import wait_until

from vec_inf_flows.sim.process import SimServer

from .conftest import read_records, sim_args, write_requests


def runner_command(base_url: str, source: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vec_inf_flows.workload",
        "run",
        "--base-url",
        base_url,
        "--input",
        str(source),
        "--output",
        str(output),
        "--concurrency",
        "4",
        "--fsync-every",
        "8",
    ]


def wait_for_lines(output: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    def written() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the runner exited ({process.poll()}) before {count} records")
        return output.exists() and output.read_bytes().count(b"\n") >= count

    wait_until(written, 60, f"the runner to write {count} records", interval=0.02)


def test_sigkill_half_way_then_rerun(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 120, max_tokens=20)
    output = tmp_path / "out.jsonl"
    with SimServer(sim_args(seqs=4, tokens_per_second=400)) as server:
        command = runner_command(server.base_url, source, output)
        victim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_lines(output, 30, victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate()
        assert victim.returncode == -signal.SIGKILL
        before = read_records(output)
        assert 30 <= len(before) < 120
        # Make the crash as bad as it can be: a record cut off mid-write.
        with output.open("ab") as handle:
            handle.write(b'{"id": "r119", "line": 120, "ok": tr')

        rerun = subprocess.run(command, capture_output=True, check=True)

    summary = json.loads(rerun.stdout)
    records = read_records(output)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == {f"r{n}" for n in range(120)}
    assert all(r["ok"] for r in records)
    assert summary["skipped"] == len(before) and summary["ok"] == 120 - len(before)
    assert records[: len(before)] == before  # earlier results untouched


def test_cli_reports_user_errors_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("{}\n")
    command = runner_command("http://127.0.0.1:9/v1", source, tmp_path / "out.jsonl")
    result = subprocess.run([*command, "--model", "m"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: Cannot tell the format of {source} from its name: pass jsonl or csv."
    ]


def test_lone_surrogate_line_is_one_error_record_and_the_rest_completes(tmp_path: Path) -> None:
    """``"\\ud83d"`` is valid JSON but no UTF-8 text: it crashed every run at the same line."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "before"}\n'
        '{"id": "bad", "prompt": "half a pair \\ud83d"}\n'
        '{"id": "pair", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}\n'
        '{"id": "c", "prompt": "after"}\n'
    )
    output = tmp_path / "out.jsonl"
    with SimServer(sim_args()) as server:
        for _ in range(2):  # the rerun skips everything, the bad line included
            result = subprocess.run(
                runner_command(server.base_url, source, output),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
    records = {record["line"]: record for record in read_records(output)}
    assert sorted(records) == [1, 2, 3, 4]
    assert records[1]["ok"] and records[3]["ok"] and records[4]["ok"]
    assert records[2]["error"]["message"] == (
        "line 2: not valid UTF-8 after JSON decoding (lone surrogate '\\ud83d')"
    )


def test_cli_turns_any_failure_into_one_line(tmp_path: Path) -> None:
    """An unexpected fault (here: the output path is a directory) is one line, no traceback."""
    source = write_requests(tmp_path / "in.jsonl", 2)
    output = tmp_path / "out.jsonl"
    output.mkdir()
    result = subprocess.run(
        [*runner_command("http://127.0.0.1:9/v1", source, output), "--model", "m"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
