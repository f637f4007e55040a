"""The CLI as a user runs it: a subprocess, real Slurm, the simulator, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from e2e_helpers import CLI, REPO, Sandbox

MODEL = "SmolLM2-135M-Instruct"


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_list_and_list_model(sandbox: Sandbox) -> None:
    names = json.loads(sandbox.cli("list", "--json-mode").stdout)
    assert len(names) >= 62 and MODEL in names and "all-MiniLM-L6-v2" in names
    table = sandbox.cli("list").stdout
    assert "Meta-Llama-3.1-8B-Instruct" in table
    one = json.loads(sandbox.cli("list", "Meta-Llama-3.1-8B-Instruct", "--json-mode").stdout)
    assert one["vocab_size"] == 128256 and one["model_family"] == "Meta-Llama-3.1"
    shown = sandbox.cli("list", "Meta-Llama-3.1-8B-Instruct").stdout
    assert "vLLM Arguments:" in shown and "--max-model-len:" in shown


def test_unknown_model_suggests_close_names(sandbox: Sandbox) -> None:
    line = _one_clear_line(sandbox.cli("launch", "Meta-Llama-3.1-8b-instruct"))
    assert "Unknown model" in line and "Did you mean: Meta-Llama-3.1-8B-Instruct" in line
    assert sandbox.job_ids() == []


def test_malformed_job_ids_are_refused_before_anything_runs(sandbox: Sandbox) -> None:
    for bad in ("1; touch /tmp/vif-pwned", "$(id)", "12+", "abc"):
        line = _one_clear_line(sandbox.cli("status", bad))
        assert "Invalid job id" in line
        _one_clear_line(sandbox.cli("shutdown", "1", bad))  # nothing cancelled, not even "1"
    assert not Path("/tmp/vif-pwned").exists()


def test_bad_yaml_names_file_and_line(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "my-models.yaml"
    config.write_text("models:\n  Foo:\n    model_family: Foo\n    vocab_size: [1,\n")
    env = {**sandbox.env, "VEC_INF_CONFIG": str(config)}
    result = subprocess.run(
        [*CLI, "list"], capture_output=True, text=True, env=env, cwd=REPO, timeout=30
    )
    line = _one_clear_line(result)
    assert line == f"Error: {config}:5: did not find expected node content", line


def test_bad_values_after_merging_are_rejected(sandbox: Sandbox) -> None:
    line = _one_clear_line(sandbox.cli("launch", MODEL, "--engine", "sim", "--time", "25:99"))
    assert "time" in line
    line = _one_clear_line(sandbox.cli("launch", MODEL, "--engine", "sim", "--partition", "a;b"))
    assert "partition" in line
    assert sandbox.job_ids() == []


def test_slurm_not_installed_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**sandbox.env, "PATH": f"{Path(sys.executable).parent}:/usr/bin/nonexistent"}
    result = subprocess.run(
        [*CLI, "--help"], capture_output=True, text=True, env=env, cwd=REPO, timeout=30
    )
    assert result.returncode == 0
    result = subprocess.run(
        [*CLI, "status", "123", "--backend", "slurm"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=30,
    )
    assert "Slurm is not installed" in _one_clear_line(result)


def test_controller_down_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    text = Path("/etc/slurm/slurm.conf").read_text()
    conf.write_text(text.replace("SlurmctldPort=6817", "SlurmctldPort=6999"))
    env = {**sandbox.env, "SLURM_CONF": str(conf), "VEC_INF_SLURM_ATTEMPTS": "1"}
    result = subprocess.run(
        [*CLI, "status", "123"], capture_output=True, text=True, env=env, cwd=REPO, timeout=90
    )
    line = _one_clear_line(result)
    assert "controller" in line.lower(), line


def test_plain_commands_never_import_prefect(sandbox: Sandbox) -> None:
    probe = (
        "import sys\n"
        "from vec_inf_flows.cli.main import main\n"
        "for argv in (['list', '--json-mode'], ['status', '--json-mode']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'prefect'], 'prefect imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=sandbox.env, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_launch_status_metrics_shutdown_through_the_cli(sandbox: Sandbox) -> None:
    launched = sandbox.cli(
        "launch",
        MODEL,
        "--engine",
        "sim",
        "--time",
        "00:05:00",
        "--vllm-args",
        "--sim-startup-delay=0.3,--max-num-seqs=8",
        "--json-mode",
    )
    assert launched.returncode == 0, launched.stderr
    job_id = json.loads(launched.stdout)["job_id"]
    waited = sandbox.cli("wait", job_id, "--timeout", "60", "--json-mode", timeout=90)
    assert json.loads(waited.stdout)["server_status"] == "READY", waited.stderr
    table = sandbox.cli("status", job_id).stdout
    assert "READY" in table and "http://" in table
    listing = json.loads(sandbox.cli("status", "--json-mode").stdout)
    assert job_id in [entry["job_id"] for entry in listing]
    metrics = sandbox.cli("metrics", job_id, "--once")
    assert "Successful Requests" in metrics.stdout and "KV Cache Usage" in metrics.stdout
    done = sandbox.cli("shutdown", job_id)
    assert f"Shutting down model with Slurm Job ID: {job_id}" in done.stdout
    deadline = time.monotonic() + 30
    while json.loads(sandbox.cli("status", job_id, "--json-mode").stdout)["server_status"] != (
        "SHUTDOWN"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_hostile_values_are_passed_inertly(sandbox: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile_env = f"PAYLOAD=$(touch {marker}),SECOND=`touch {marker}`; touch {marker}"
    launched = sandbox.cli(
        "launch",
        MODEL,
        "--engine",
        "sim",
        "--time",
        "00:05:00",
        "--env",
        hostile_env,
        "--vllm-args",
        f"--served-model-name={MODEL},--chat-template=x; touch {marker}",
        "--json-mode",
    )
    assert launched.returncode == 0, launched.stderr
    job_id = json.loads(launched.stdout)["job_id"]
    waited = sandbox.cli("wait", job_id, "--timeout", "60", "--json-mode", timeout=90)
    assert json.loads(waited.stdout)["server_status"] == "READY", waited.stderr
    assert not marker.exists()
    script = next(sandbox.logs.rglob(f"*.{job_id}.slurm")).read_text()
    assert f"touch {marker}" in script  # the text is there, quoted, and never ran
    sandbox.cli("shutdown", job_id)
    assert os.path.exists(sandbox.logs)


def test_run_refuses_bad_input_in_one_line_before_starting_prefect(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "hi"}\n')
    cases = {
        "does not exist": ["--model", MODEL, "--input", str(tmp_path / "missing.jsonl")],
        "Did you mean": ["--model", "SmolLM2", "--input", str(prompts)],
        "time": ["--model", MODEL, "--engine", "sim", "--time", "99:99", "--input", str(prompts)],
        "Invalid job id": ["--job-id", "1;touch x", "--input", str(prompts)],
        "directory does not exist": [
            "--model", MODEL, "--input", str(prompts), "--output", str(tmp_path / "no/out.jsonl"),
        ],
        "replicas must be at least 1": ["--model", MODEL, "--replicas", "0"],
        "max_gpus must be at least 1": [
            "--model", MODEL, "--replicas", "2", "--max-gpus", "0", "--input", str(prompts),
        ],
        "needs the router": ["--model", MODEL, "--replicas", "2", "--param", "workload=pkg.m:f"],
        "cannot be combined with replicas": ["--job-id", "7", "--replicas", "2"],
    }  # fmt: skip
    for expected, args in cases.items():
        result = sandbox.cli("run", "serve-and-run", *args)
        assert expected in _one_clear_line(result), (expected, result.stderr)
        assert "prefect" not in result.stderr.lower()  # refused before any flow run began
    assert sandbox.job_ids() == []
