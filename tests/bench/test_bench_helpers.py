"""The benchmark helpers measure and count what they claim to (no timings are asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import _common
import cli_latency
import status_scaling


def test_timed_run_records_exit_code_and_output(tmp_path: Path) -> None:
    env = _common.bench_environment(tmp_path)
    run = _common.timed_run([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], env)
    assert run.returncode == 3
    assert run.stdout == "hi\n"
    assert run.seconds > 0


def test_samples_count_failures_and_summarise() -> None:
    samples = _common.Samples()
    for seconds, code in [(0.3, 0), (0.1, 0), (0.2, 1)]:
        samples.add(_common.Run(seconds, code, "", ""))
    assert samples.median == pytest.approx(0.2)
    assert samples.minimum == pytest.approx(0.1)
    assert samples.failures == 1


def test_bench_environment_isolates_home_without_touching_ours(tmp_path: Path) -> None:
    home_before = os.environ.get("HOME")
    env = _common.bench_environment(tmp_path, {"EXTRA": "1"})
    assert env["HOME"] == str(tmp_path)
    assert env["VEC_INF_FLOWS_HOME"] == str(tmp_path / ".vec-inf-flows")
    assert env["EXTRA"] == "1"
    assert os.environ.get("HOME") == home_before


def test_table_aligns_label_left_and_numbers_right(capsys: pytest.CaptureFixture[str]) -> None:
    _common.print_table(["name", "ms"], [["a", "1.0"], ["longer", "10.25"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name       ms"
    assert lines[1] == "-" * len(lines[0])
    assert lines[2] == "a         1.0"
    assert lines[3] == "longer  10.25"


def test_ratio_reads_ours_over_anchor() -> None:
    assert _common.ratio(0.5, 2.0).strip() == "0.25"
    assert _common.ratio(1.0, 0.0).strip() == "n/a"


def test_latency_cases_ask_both_tools_about_the_same_model(tmp_path: Path) -> None:
    config = cli_latency.user_config(tmp_path)
    assert "WEIGHTS_DIR" not in config.read_text() and str(tmp_path) in config.read_text()
    cases = {label: (argv, env) for label, argv, env in cli_latency.command_cases("M", config)}
    assert cases["--help"] == (["--help"], {})
    assert cases["list M --json-mode"] == (["list", "M", "--json-mode"], {})
    assert cases[cli_latency.FIRST] == (["list"], {})
    assert cases[cli_latency.FIRST_WITH_CONFIG] == (["list"], {"VEC_INF_CONFIG": str(config)})


def test_counting_shim_logs_each_call_and_runs_the_real_command(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    log = tmp_path / "calls.log"
    status_scaling._write_counting_shims(shims, names=("echo", "true"))
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}", BENCH_SLURM_CALL_LOG=str(log))
    out = subprocess.run(["echo", "a b"], env=env, capture_output=True, text=True, check=True)
    subprocess.run(["true"], env=env, check=True)
    subprocess.run(["sh", "-c", "echo x >/dev/null"], env=env, check=True)  # a builtin: not seen
    assert out.stdout == "a b\n"
    assert log.read_text().split() == ["echo", "true"]


def test_anchor_all_count_reads_its_json_or_its_no_jobs_line() -> None:
    assert status_scaling._anchor_all_count('[{"job_id": "m"}, {"job_id": "n"}]') == 2
    assert status_scaling._anchor_all_count("No running jobs found.\n") == 0
