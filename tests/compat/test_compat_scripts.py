"""Scripts written the way vec-inf's docs and examples write them, with one line changed, run
against the local Slurm cluster with the simulator (the scripts are in ./scripts).

``basic_usage.py`` and ``run_downstream.py`` follow vec-inf's ``examples/api/basic_usage.py``
and ``examples/slurm_dependency/run_downstream.py``; ``run_workflow.sh`` follows
``examples/slurm_dependency/run_workflow.sh`` and ``json_readers.sh`` reads vec-inf's JSON keys
with ``python3 -c`` (no jq). The only changes: the import line or the command name, and the
simulator engine because this cluster has no GPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from testkit import REPO, Sandbox, guide_custom_model_config

MODEL = "SmolLM2-135M-Instruct"
SCRIPTS = Path(__file__).with_name("scripts")
CLI = [sys.executable, "-m", "vec_inf_flows.cli.main"]


def run_script(
    sandbox: Sandbox, *argv: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a script as a user would: ``vec-inf-flows`` and ``python`` from this venv on PATH."""
    env = {**sandbox.env, "PATH": f"{Path(sys.executable).parent}:{sandbox.env['PATH']}"}
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )


def test_vecinf_basic_usage_example_runs_after_one_import_change(sandbox: Sandbox) -> None:
    result = run_script(sandbox, sys.executable, str(SCRIPTS / "basic_usage.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Found 129 models" in out or "Found 13" in out
    assert "Model is ready at: http://" in out
    assert "- total_prompt_tokens: 0.0" in out and "- successful_requests_total: 0.0" in out
    assert out.rstrip().endswith("Model shutdown complete")
    (job_id,) = [line.split(": ")[1] for line in out.splitlines() if "Launched with job ID" in line]
    deadline = time.monotonic() + 60
    while job_id in sandbox.squeue_ids():
        assert time.monotonic() < deadline, "the server outlived shutdown_model"
        time.sleep(0.5)


def test_the_api_returns_vecinf_shapes(sandbox: Sandbox) -> None:
    from vec_inf_flows.compat import LaunchOptions, ModelStatus, ModelType, VecInfClient

    client = VecInfClient(sandbox.client)
    llama = next(info for info in client.list_models() if info.name == "Meta-Llama-3.1-8B-Instruct")
    assert llama.model_type is ModelType.LLM and llama.config["vocab_size"] == 128256
    assert "model_name" not in llama.config and "venv" not in llama.config
    assert client.get_model_config(MODEL).gpus_per_node == 0
    launched = client.launch_model(MODEL, LaunchOptions(engine="sim", time="00:10:00"))
    assert launched.config["slurm_job_id"] == launched.slurm_job_id
    assert launched.slurm_job_id in client.fetch_running_jobs()
    early = client.get_metrics(launched.slurm_job_id)
    if isinstance(early.metrics, str):  # before READY: why, not an exception
        assert "Pending" in early.metrics or "not ready" in early.metrics
    ready = client.wait_until_ready(launched.slurm_job_id, 120, 1)
    assert ready.server_status is ModelStatus.READY and ready.base_url.startswith("http://")
    status = client.get_status(launched.slurm_job_id)
    assert (status.model_name, status.job_state) == (MODEL, "RUNNING")
    assert Path(status.log_dir).is_dir() and json.loads(status.raw_output)["job_id"]
    first = client.get_metrics(launched.slurm_job_id)
    assert isinstance(first.metrics, dict) and first.metrics["requests_running"] == 0.0
    assert client.shutdown_model(launched.slurm_job_id) is True
    deadline = time.monotonic() + 60
    while launched.slurm_job_id in client.fetch_running_jobs():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    gone = client.get_status(launched.slurm_job_id)
    assert (gone.server_status, gone.base_url) == (ModelStatus.SHUTDOWN, "UNAVAILABLE")


def test_batch_launch_models_with_account_and_work_dir(sandbox: Sandbox, tmp_path: Path) -> None:
    from vec_inf_flows.compat import VecInfClient

    batch_file = tmp_path / "batch.yaml"
    batch_file.write_text(
        "models:\n"
        "  SmolLM2-135M-Instruct:\n    engine: sim\n    time: '00:05:00'\n"
        "  all-MiniLM-L6-v2:\n    engine: sim\n    time: '00:05:00'\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    client = VecInfClient(sandbox.client)
    response = client.batch_launch_models(
        [MODEL, "all-MiniLM-L6-v2"], str(batch_file), account="root", work_dir=str(work)
    )
    assert response.model_names == [MODEL, "all-MiniLM-L6-v2"]
    config = response.config
    assert config["slurm_job_id"] == response.slurm_job_id
    assert (config["account"], config["work_dir"]) == ("root", str(work))
    assert [entry["het_group_id"] for entry in config["models"].values()] == [0, 1]
    scontrol = subprocess.run(
        ["scontrol", "show", "job", response.slurm_job_id], capture_output=True, text=True
    ).stdout
    assert "Account=root" in scontrol and f"WorkDir={work}" in scontrol
    client.shutdown_model(response.slurm_job_id)


def test_vecinf_slurm_dependency_workflow_runs_with_the_command_renamed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "downstream.out"
    result = run_script(sandbox, "bash", str(SCRIPTS / "run_workflow.sh"), str(out), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    server_line, downstream_id = result.stdout.strip().splitlines()
    server_id = server_line.removeprefix("Launched server as job ")
    deadline = time.monotonic() + 240
    while subprocess.run(
        ["squeue", "-h", "-j", downstream_id], capture_output=True, text=True
    ).stdout.strip():
        assert time.monotonic() < deadline, "the downstream job did not finish"
        time.sleep(1)
    text = out.read_text()
    assert f"Waiting for SLURM job {server_id} to be ready..." in text
    assert "Server is ready at http://" in text and "True 20" in text
    assert server_id not in sandbox.squeue_ids()  # the downstream job shut it down


def _queued(job_id: str) -> bool:
    squeue = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
    return bool(squeue.stdout.strip())


def test_shell_scripts_reading_vecinf_json_keys_work(sandbox: Sandbox, tmp_path: Path) -> None:
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        "models:\n"
        "  SmolLM2-135M-Instruct:\n    engine: sim\n    time: '00:05:00'\n"
        "  all-MiniLM-L6-v2:\n    engine: sim\n    time: '00:05:00'\n"
    )
    result = run_script(sandbox, "bash", str(SCRIPTS / "json_readers.sh"), str(batch))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["status"] in ("PENDING", "LAUNCHING", "READY")
    assert lines["base_url"] == "UNAVAILABLE" or lines["base_url"].startswith("http://")
    assert lines["listed"].startswith("['") and lines["listed"].count("'") == 2
    batch_id, offset = lines["batch"].split()
    assert batch_id.isdigit() and offset == "1"
    assert (lines["vocab"], lines["account"]) == ("128256", "None")


def test_guide_custom_model_example_launches_as_written(sandbox: Sandbox, tmp_path: Path) -> None:
    """The guide's Qwen2.5-7B-Instruct-1M file, its weights directory made real. This cluster
    has no a40 partition, m2 QoS or 64G nodes: the command line says so, as any user would."""
    config = guide_custom_model_config(tmp_path)
    env = {**sandbox.env, "VEC_INF_CONFIG": str(config)}
    local = ["--partition", "debug", "--qos", "normal", "--mem-per-node", "4G", "--engine", "sim"]
    result = subprocess.run(
        [*CLI, "launch", "Qwen2.5-7B-Instruct-1M", *local, "--strict", "--json-mode"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    launched = json.loads(result.stdout)
    assert launched["gpus_per_node"] == "1" and launched["gres"] == "gpu:1"
    args = launched["engine_args"]  # merged per flag over the built-in entry's
    assert (args["--max-model-len"], args["--max-num-seqs"]) == (1010000, 256)
    assert "--tensor-parallel-size" not in args
    script = Path(launched["job_dir"], f"Qwen2.5-7B-Instruct-1M.{launched['job_id']}.slurm")
    assert "--tensor-parallel-size" not in script.read_text()
    # The cluster is shared: the job may queue behind others for its GPU.
    ready = sandbox.client.wait_until_ready(launched["job_id"], timeout=600, poll_interval=1)
    assert ready.model_name == "Qwen2.5-7B-Instruct-1M"
    sandbox.client.shutdown(launched["job_id"])
