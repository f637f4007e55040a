"""``vec-inf-flows run serve-and-run`` as a user types it: a real process, the session's API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prefect_helpers import MODEL, ClusterJobs, read_records, write_prompts

pytestmark = pytest.mark.prefect

CLI = Path(sys.executable).with_name("vec-inf-flows")


def test_run_serve_and_run_writes_one_record_per_input_and_shuts_down(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 12)
    output = tmp_path / "out.jsonl"

    argv = [
        str(CLI), "run", "serve-and-run",
        "--model", MODEL,
        "--engine", "sim",
        "--vllm-args", "--sim-startup-delay=0.5",
        "--time", "00:10:00",
        "--log-dir", str(jobs.log_dir),
        "--input", prompts,
        "--output", str(output),
        "--chunk-size", "5",
        "--ready-timeout", "180",
    ]  # fmt: skip

    done = subprocess.run(
        argv,
        env={**subprocess_env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PREFECT_API_URL" not in done.stdout  # it used the session's server, not its own
    assert f"{MODEL}: prompts.jsonl" in done.stdout and "12/12" in done.stdout  # progress bar
    assert "COMPLETED" in done.stdout
    records = read_records(output)
    assert sorted(record["id"] for record in records) == sorted(f"p{i}" for i in range(12))
    assert all(record["ok"] for record in records)
    (job_id,) = jobs.ids()
    assert job_id in done.stdout
    jobs.assert_none_left()
