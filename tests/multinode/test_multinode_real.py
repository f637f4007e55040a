"""A server spread over both nodes of the local cluster (SmolLM2, pipeline parallel 2), for real.

Launched through the CLI like any model, in both multi-node modes: it must answer exactly as the
same model on one node does (greedy), report real metrics, leave no process of the job on the
machine after shutdown, and turn FAILED within seconds when a process of the second node dies.
An owner that dies stops a multi-node server by its lease, as it stops any other: cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit import (
    REPO,
    JobProcess,
    Sandbox,
    job_processes,
    make_sandbox,
    no_engine_processes_left,
    sessions_of_job,
)

from vec_inf_flows.models import ServerStatus

pytestmark = [pytest.mark.multinode, pytest.mark.slurm]

MODEL = "SmolLM2-135M-Instruct"
READY_TIMEOUT = 600.0
# Pipeline parallel on CPU needs torch.compile's eager backend: mode 0 trips an assertion in
# vLLM 0.32's CPU runner on the first request (no intermediate-tensor buffer).
ENGINE_ARGS = '--compilation-config={"mode": 2, "backend": "eager"}'
TWO_NODES = "--pipeline-parallel-size=2,--tensor-parallel-size=1," + ENGINE_ARGS
# Both "nodes" are this one 2-core host: vLLM's default binding would pin each node's worker to
# core 0, both pipeline stages on one core (2 tokens/s); let them use both cores.
BOTH_CORES = "VLLM_CPU_OMP_THREADS_BIND=0-1"
PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Write a haiku about the sea.",
]


def greedy_answers(base_url: str) -> list[str]:
    answers = []
    for prompt in PROMPTS:
        reply = httpx.post(
            f"{base_url}/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 32,
                "temperature": 0,
            },
            timeout=180,
        )
        assert reply.status_code == 200, reply.text
        answers.append(reply.json()["choices"][0]["message"]["content"])
    return answers


def launch(box: Sandbox, *options: str) -> str:
    result = box.cli(
        "launch", MODEL, "--time", "00:20:00", "--env", BOTH_CORES, *options, "--json-mode"
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["job_id"])


def ready_url(box: Sandbox, job_id: str) -> str:
    ready = box.client.wait_until_ready(job_id, timeout=READY_TIMEOUT, poll_interval=2)
    assert ready.base_url is not None
    return ready.base_url


@pytest.fixture(scope="module")
def single_node_answers(
    tmp_path_factory: pytest.TempPathFactory, cpu_engine: object, slurm_cluster: None
) -> Iterator[list[str]]:
    """The same model on one node with the same engine flags: the answers to match."""
    with pytest.MonkeyPatch.context() as patch:
        box = make_sandbox(tmp_path_factory.mktemp("single"), patch)
        job_id = launch(box, "--vllm-args", ENGINE_ARGS)
        try:
            yield greedy_answers(ready_url(box, job_id))
        finally:
            box.client.shutdown(job_id)
            no_engine_processes_left(job_id, within=60)


def two_node_options(mode: str, ray_venv: Path) -> list[str]:
    options = ["--num-nodes", "2", "--gpus-per-node", "1", "--multi-node-mode", mode]
    options += ["--vllm-args", TWO_NODES]
    return options + (["--venv", str(ray_venv)] if mode == "ray" else [])


def second_node_engine(job_id: str) -> JobProcess:
    """The process doing the second node's work: ``ray start`` or ``vllm serve --headless``."""
    found = [
        process
        for process in job_processes(job_id)
        if process.node == "node2"
        and len(process.argv) > 2
        and os.path.basename(process.argv[1]) in ("ray", "vllm")
        and process.argv[2] in ("start", "serve")
    ]
    assert len(found) == 1, found
    return found[0]


def ray_temp_dirs(job_id: str) -> list[str]:
    return [name for name in os.listdir("/tmp") if name == f"vec-inf-ray-{job_id}"]


@pytest.mark.parametrize("mode", ["native", "ray"])
def test_two_nodes_answer_like_one_and_leave_nothing(
    sandbox: Sandbox, mode: str, ray_venv: Path, single_node_answers: list[str]
) -> None:
    job_id = launch(sandbox, *two_node_options(mode, ray_venv))
    base_url = ready_url(sandbox, job_id)
    # both nodes run part of it (some Ray helpers start without SLURMD_NODENAME: node None)
    assert {"node1", "node2"} <= {process.node for process in job_processes(job_id)}
    sessions = sessions_of_job(job_id)
    if mode == "ray":  # Ray makes its temp dir world-writable; the job's parent keeps others out
        assert os.stat(f"/tmp/vec-inf-ray-{job_id}").st_mode & 0o777 == 0o700

    assert greedy_answers(base_url) == single_node_answers
    shown = sandbox.cli("metrics", job_id, "--once", "--json-mode")
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)["metrics"]
    assert metrics["successful_requests"] == len(PROMPTS)
    assert metrics["total_generation_tokens"] >= len(PROMPTS)

    stopped = sandbox.cli("shutdown", job_id)
    assert stopped.returncode == 0, stopped.stderr
    assert sandbox.client.status(job_id).server_status is ServerStatus.SHUTDOWN
    no_engine_processes_left(job_id, within=45, sessions=sessions)
    assert ray_temp_dirs(job_id) == []


@pytest.mark.parametrize("mode", ["native", "ray"])
def test_killing_the_second_node_fails_the_server_everywhere(
    sandbox: Sandbox, mode: str, ray_venv: Path
) -> None:
    job_id = launch(sandbox, *two_node_options(mode, ray_venv))
    ready_url(sandbox, job_id)
    sessions = sessions_of_job(job_id)
    victim = second_node_engine(job_id)

    os.kill(victim.pid, signal.SIGKILL)
    killed = time.monotonic()
    while (status := sandbox.client.status(job_id)).server_status is not ServerStatus.FAILED:
        assert time.monotonic() - killed < 20, status
        time.sleep(1)
    assert "node2" in (status.failed_reason or ""), status.failed_reason
    assert "SIGKILL" in (status.failed_reason or ""), status.failed_reason

    no_engine_processes_left(job_id, within=45, sessions=sessions)
    deadline = time.monotonic() + 60
    while sandbox.squeue_ids():
        assert time.monotonic() < deadline, "the job outlived its failed node"
        time.sleep(1)
    final = sandbox.client.status(job_id)
    assert final.server_status is ServerStatus.FAILED
    assert "node2" in (final.failed_reason or "")
    assert ray_temp_dirs(job_id) == []


# A Python API owner holding a short lease on a 2-node server; the test SIGKILLs it once READY.
LEASE_OWNER = """
import json, sys, time
from vec_inf_flows import LeasePolicy, VecInfClient
client = VecInfClient()
launched = client.launch(sys.argv[1], lease=LeasePolicy(renew_every=3, lapse_after=15),
                         **json.loads(sys.argv[2]))
print(launched.job_id, launched.job_dir, flush=True)
client.wait_until_ready(launched.job_id, timeout=float(sys.argv[3]), poll_interval=2)
print("READY", flush=True)
time.sleep(3600)
"""


def test_a_dead_owner_stops_every_node_by_its_lease(sandbox: Sandbox, tmp_path: Path) -> None:
    options = {
        "num_nodes": 2,
        "gpus_per_node": 1,
        "multi_node_mode": "native",
        "vllm_args": TWO_NODES,
        "env": BOTH_CORES,
        "time": "00:20:00",
    }
    script = tmp_path / "owner.py"
    script.write_text(LEASE_OWNER)
    argv = [sys.executable, str(script), MODEL, json.dumps(options), str(READY_TIMEOUT)]
    owner = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=sandbox.env, cwd=REPO)
    assert owner.stdout is not None
    job_id, job_dir = owner.stdout.readline().split()
    try:
        assert owner.stdout.readline().strip() == "READY"
        sessions = sessions_of_job(job_id)
        assert {"node1", "node2"} <= {process.node for process in job_processes(job_id)}
    finally:
        owner.kill()
        owner.wait()
    killed = time.monotonic()
    while sandbox.squeue_ids():
        assert time.monotonic() - killed < 15 + 60, "the server outlived its owner's lease"
        time.sleep(1)
    final = sandbox.client.status(job_id)
    assert final.server_status is ServerStatus.SHUTDOWN, final
    assert (final.detail or "").startswith("owner stopped renewing at "), final
    assert final.slurm_state in ("COMPLETED", None), final  # ended cleanly, not FAILED
    errors = Path(job_dir).glob("*.err")
    assert not [
        line
        for path in errors
        for line in path.read_text().splitlines()
        if line.startswith("vec-inf: ")
    ]
    no_engine_processes_left(job_id, within=45, sessions=sessions)
