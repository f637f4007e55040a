"""Servers launched by vec-inf itself (the real 0.9.0 CLI) on the local cluster: status and
shutdown of this tool work on them, so a team can switch with servers still running.

vec-inf's jobs run this package's simulator as their ``vllm`` (bench/_anchor_jobs.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anchor_files import anchor_cli
from testkit import CLI, REPO, Sandbox

sys.path.insert(0, str(REPO / "bench"))
from _anchor_jobs import MODEL, anchor_kit

from vec_inf_flows.origin import JobOrigin
from vec_inf_flows.server_status import ServerStatus


@dataclass
class VecInf:
    """The real vec-inf CLI, set up to launch on this cluster."""

    command: Path
    env: dict[str, str]
    args: list[str]  # launch options: config, venv, weights, log dir, no GPU type
    log_dir: Path
    launched: list[str]

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.command), *argv], capture_output=True, text=True, env=self.env, timeout=120
        )

    def launch(self) -> str:
        result = self.run("launch", MODEL, *self.args, "--json-mode")
        assert result.returncode == 0, result.stderr
        job_id = str(json.loads(result.stdout)["slurm_job_id"])
        self.launched.append(job_id)
        return job_id


@pytest.fixture
def vecinf(sandbox: Sandbox, tmp_path: Path) -> Iterator[VecInf]:
    logs = tmp_path / "vecinf-logs"
    kit = anchor_kit(tmp_path, logs)
    env = {**sandbox.env, "VEC_INF_ACCOUNT": "root", "VEC_INF_WORK_DIR": str(kit.work_dir)}
    runner = VecInf(anchor_cli(), env, kit.args, logs, [])
    try:
        yield runner
    finally:
        if runner.launched:
            subprocess.run(["scancel", *runner.launched], capture_output=True, timeout=30)


def ours(sandbox: Sandbox, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *argv], capture_output=True, text=True, env=sandbox.env, cwd=REPO, timeout=120
    )


def test_status_and_shutdown_of_a_server_vecinf_launched(sandbox: Sandbox, vecinf: VecInf) -> None:
    job_id = vecinf.launch()
    ready = sandbox.client.wait_until_ready(job_id, timeout=120, poll_interval=1)
    assert (ready.model_name, ready.server_status) == (MODEL, ServerStatus.READY)
    assert sandbox.client.origin(job_id).origin is JobOrigin.VEC_INF
    theirs = json.loads(vecinf.run("status", job_id, "--json-mode").stdout)
    mine = json.loads(ours(sandbox, "status", job_id, "--json-mode").stdout)
    assert set(theirs) <= set(mine)
    assert {key: mine[key] for key in theirs} == theirs  # same answer, same keys
    listed = json.loads(ours(sandbox, "status", "--json-mode").stdout)
    assert [entry["model_status"] for entry in listed if entry["job_id"] == job_id] == ["READY"]
    shut = ours(sandbox, "shutdown", job_id)
    assert shut.returncode == 0, shut.stderr
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, "vec-inf's server outlived shutdown"
        time.sleep(0.5)
    after = sandbox.client.status(job_id)
    assert after.server_status is ServerStatus.SHUTDOWN and after.detail == "shut down on request"


def test_vecinf_folders_under_its_default_log_dir_are_found_without_slurm(
    sandbox: Sandbox, vecinf: VecInf, tmp_path: Path
) -> None:
    """vec-inf's default ``~/.vec-inf-logs``: the folder is found by its name alone."""
    vecinf.env["HOME"] = str(tmp_path / "home")
    index = vecinf.args.index("--log-dir")
    del vecinf.args[index : index + 2]
    job_id = vecinf.launch()
    folder = tmp_path / "home" / ".vec-inf-logs" / "SmolLM2" / f"{MODEL}.{job_id}"
    env = {**os.environ, **sandbox.env, "HOME": str(tmp_path / "home")}
    probe = (
        "import sys; from vec_inf_flows.client import VecInfClient;"
        f"found = VecInfClient(state_dir={str(sandbox.home)!r}).origin({job_id!r});"
        "print(found.origin.value, found.directory)"
    )
    deadline = time.monotonic() + 60
    while not (folder / f"{MODEL}.{job_id}.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.split() == ["vec-inf", str(folder)], result.stderr


def test_json_keys_are_a_superset_of_vecinfs(sandbox: Sandbox, vecinf: VecInf) -> None:
    theirs = json.loads(vecinf.run("launch", MODEL, *vecinf.args, "--json-mode").stdout)
    vecinf.launched.append(str(theirs["slurm_job_id"]))
    launched = ours(
        sandbox, "launch", MODEL, "--engine", "sim", "--time", "00:05:00", "--json-mode"
    )
    mine = json.loads(launched.stdout)
    vecinf_only = {"config", "engine_inferred"}  # theirs: the --config path; ours: the record
    assert set(theirs) - vecinf_only <= set(mine), set(theirs) - set(mine)
    assert isinstance(mine["config"], dict) and mine["slurm_job_id"] == mine["job_id"]
    for name in ("Meta-Llama-3.1-8B-Instruct", "Qwen3-8B"):
        their_model = json.loads(vecinf.run("list", name, "--json-mode").stdout)
        my_model = json.loads(ours(sandbox, "list", name, "--json-mode").stdout)
        assert set(their_model) <= set(my_model), set(their_model) - set(my_model)
        for key in ("model_family", "model_type", "gpus_per_node", "num_nodes", "vocab_size"):
            assert my_model[key] == their_model[key], key
    their_names = json.loads(vecinf.run("list", "--json-mode").stdout)
    assert set(their_names) <= set(json.loads(ours(sandbox, "list", "--json-mode").stdout))


def test_origin_tells_ours_vecinfs_and_a_plain_job_apart(sandbox: Sandbox, vecinf: VecInf) -> None:
    theirs = vecinf.launch()
    mine = sandbox.client.launch(MODEL, engine="sim", time="00:05:00").job_id
    plain = subprocess.run(
        ["sbatch", "--parsable", "--time=00:02:00", "--cpus-per-task=1", "--wrap", "sleep 120"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    vecinf.launched.append(plain)
    origins = {job: sandbox.client.origin(job).origin for job in (theirs, mine, plain)}
    assert origins == {
        theirs: JobOrigin.VEC_INF,
        mine: JobOrigin.OURS,
        plain: JobOrigin.FOREIGN,
    }
