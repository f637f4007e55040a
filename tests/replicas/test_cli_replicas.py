"""The user's path: ``vec-inf-flows launch MODEL --replicas N``, then wait/status/shutdown by
group id, on the real local Slurm cluster, with an API key and with the router as a job or
as a local process."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit import Sandbox

pytestmark = pytest.mark.slurm

KEY = "sk-group-key-7f3e9a"
CHAT = {
    "model": "SmolLM2-135M-Instruct",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 4,
}
LAUNCH = [
    "launch",
    "SmolLM2-135M-Instruct",
    "--engine",
    "sim",
    "--cpus-per-task",
    "1",
    "--mem-per-node",
    "1G",
    "--time",
    "00:10:00",
    "--vllm-args",
    "--sim-startup-delay=0.5,--max-num-seqs=4",
]


def cli_json(sandbox: Sandbox, *args: str, timeout: float = 120) -> object:
    result = sandbox.cli(*args, "--json-mode", timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def no_key_anywhere(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and path.name != ".secrets.env":
            assert KEY not in path.read_text(errors="replace"), path
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert KEY not in ps


def test_a_group_behind_a_router_job_with_an_api_key(sandbox: Sandbox) -> None:
    sandbox.env["VEC_INF_API_KEY"] = KEY
    launched = cli_json(sandbox, *LAUNCH, "--replicas", "2")
    assert isinstance(launched, dict)
    group_id = launched["group_id"]
    try:
        check_group_behind_router(sandbox, launched)
    finally:
        sandbox.cli("shutdown", group_id)  # also when an assertion failed


def check_group_behind_router(sandbox: Sandbox, launched: dict[str, Any]) -> None:
    group_id = launched["group_id"]
    roles = [member["role"] for member in launched["members"]]
    assert roles == ["replica", "replica", "router"]

    ready = cli_json(sandbox, "wait", group_id, "--timeout", "120", timeout=150)
    assert isinstance(ready, dict) and ready["group_status"] == "READY"
    endpoint = ready["endpoint"]
    assert endpoint and ready["endpoint_workers"]

    url = endpoint + "/chat/completions"
    assert httpx.post(url, json=CHAT, timeout=30).status_code == 401
    good = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert good.status_code == 200 and good.json()["choices"]

    # Both replicas end up behind the endpoint; the table shows the endpoint too.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = cli_json(sandbox, "status", group_id)
        assert isinstance(status, dict)
        if len(status["endpoint_workers"] or []) == 2:
            break
        time.sleep(1)
    assert status["replicas_ready"] == 2 and len(status["endpoint_workers"]) == 2
    table = sandbox.cli("status", group_id)
    assert table.returncode == 0 and endpoint in table.stdout and group_id in table.stdout

    no_key_anywhere(sandbox.logs)
    stopped = cli_json(sandbox, "shutdown", group_id)
    assert isinstance(stopped, dict)
    assert sorted(stopped["groups"][group_id]) == sorted(m["job_id"] for m in launched["members"])
    deadline = time.monotonic() + 45
    while sandbox.squeue_ids() and time.monotonic() < deadline:
        time.sleep(1)
    assert not sandbox.squeue_ids()
    after = cli_json(sandbox, "status", group_id)
    assert isinstance(after, dict) and after["group_status"] == "SHUTDOWN"


def test_a_local_router_in_front_of_slurm_replicas(sandbox: Sandbox) -> None:
    result = sandbox.cli(*LAUNCH, "--replicas", "1", "--router", "local", "--wait", "--json-mode")
    assert result.returncode == 0, result.stderr
    # As for one server: the launch document, then the status once usable (one per line).
    launched, usable = (json.loads(line) for line in result.stdout.splitlines())
    group_id = launched["group_id"]
    try:
        check_local_router(sandbox, launched, usable)
    finally:
        sandbox.cli("shutdown", group_id)  # the local router is no Slurm job: stop it here


def check_local_router(sandbox: Sandbox, launched: dict[str, Any], usable: dict[str, Any]) -> None:
    group_id = launched["group_id"]
    assert usable["group_status"] == "READY" and usable["endpoint_workers"]
    router = next(m for m in launched["members"] if m["role"] == "router")
    assert router["backend"] == "local"
    status = cli_json(sandbox, "status", group_id)
    assert isinstance(status, dict) and status["endpoint"]
    body = {"model": CHAT["model"], "prompt": "x", "max_tokens": 4}
    answer = httpx.post(status["endpoint"] + "/completions", timeout=30, json=body)
    assert answer.status_code == 200
    cli_json(sandbox, "shutdown", group_id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(status["endpoint"].removesuffix("/v1") + "/liveness", timeout=2)
        except httpx.HTTPError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the local router still answers after shutdown")
    assert not sandbox.squeue_ids()


def test_bad_group_input_is_one_line(sandbox: Sandbox) -> None:
    for args in (
        ("launch", "SmolLM2-135M-Instruct", "--engine", "sim", "--replicas", "0"),
        ("status", "group-0123abcd"),
        ("shutdown", "group-zz"),
        ("launch", "No-Such-Model", "--replicas", "2"),
        ("launch", "SmolLM2-135M-Instruct", "--replicas=2", "--gpus-per-node=4", "--max-gpus=2"),
    ):
        result = sandbox.cli(*args)
        assert result.returncode != 0, args
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, args
        assert "Traceback" not in result.stderr
    assert sandbox.job_ids() == []  # nothing was queued
