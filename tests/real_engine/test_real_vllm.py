"""The real vLLM (CPU build) serving real models, launched as real Slurm jobs.

Slow by nature (each server takes 30-60 s to start here), so each test starts one server and
checks everything that server can show.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import httpx
import pytest
from real_engine_helpers import CLI, REPO, Sandbox, no_engine_processes_left
from testkit import REAL_ENGINE_READY_TIMEOUT as READY_TIMEOUT
from testkit import wait_until

from vec_inf_flows.models import ServerStatus


def test_smollm2_chat_metrics_and_clean_shutdown(sandbox: Sandbox) -> None:
    client = sandbox.client
    launched = client.launch("SmolLM2-135M-Instruct", time="00:20:00")
    assert launched.config["engine"] == "vllm"
    ready = client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=2)
    assert ready.base_url is not None

    reply = httpx.post(
        f"{ready.base_url}/completions",
        json={
            "model": "SmolLM2-135M-Instruct",
            "prompt": "The capital of France is",
            "max_tokens": 8,
            "temperature": 0,
        },
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert "Paris" in reply.json()["choices"][0]["text"]
    chat = httpx.post(
        f"{ready.base_url}/chat/completions",
        json={
            "model": "SmolLM2-135M-Instruct",
            "max_tokens": 40,
            "messages": [{"role": "user", "content": "Give me three tips for staying healthy."}],
        },
        timeout=120,
    )
    assert chat.status_code == 200, chat.text
    assert len(chat.json()["choices"][0]["message"]["content"].split()) >= 5

    # the metrics command reads the real /metrics: two requests served, V1 rows present
    shown = subprocess.run(
        [*CLI, "metrics", launched.job_id, "--once", "--json-mode"],
        capture_output=True,
        text=True,
        env=sandbox.env,
        cwd=REPO,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)["metrics"]
    assert metrics["successful_requests"] == 2
    assert metrics["total_generation_tokens"] >= 8
    assert metrics["avg_time_to_first_token"] is not None
    assert metrics["kv_cache_usage"] is not None

    client.shutdown(launched.job_id)
    wait_until(
        lambda: client.status(launched.job_id).server_status is ServerStatus.SHUTDOWN,
        60,
        f"job {launched.job_id} to be SHUTDOWN",
        interval=1,
    )
    no_engine_processes_left(launched.job_id, within=30)


def test_minilm_embeddings(sandbox: Sandbox) -> None:
    client = sandbox.client
    launched = client.launch("all-MiniLM-L6-v2", time="00:20:00")
    ready = client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=2)
    reply = httpx.post(
        f"{ready.base_url}/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": ["cat", "feline", "stock market"]},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    vectors = [item["embedding"] for item in reply.json()["data"]]
    assert [len(v) for v in vectors] == [384, 384, 384]

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.2
    client.shutdown(launched.job_id)
    no_engine_processes_left(launched.job_id, within=30)


@pytest.mark.parametrize("backend", ["slurm", "local"])
def test_demo_flow_on_the_real_engine(sandbox: Sandbox, tmp_path: Path, backend: str) -> None:
    """The README's main command: serve_and_run on SmolLM2, answers and metrics, then nothing
    left running; on Slurm and, for machines without it, as local processes."""
    output = tmp_path / "answers.jsonl"
    env = {
        **sandbox.env,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [*CLI, "demo", "--backend", backend, "--output", str(output), "--json-mode"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "COMPLETED"
    flow_result = summary["result"]
    assert flow_result["launched"] is True
    assert flow_result["workload"]["ok"] == 5 and flow_result["workload"]["failed"] == 0
    assert flow_result["metrics"]["successful_requests"] == 5  # the real /metrics
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["capital", "gpu", "haiku", "health", "spanish"]
    assert all(r["ok"] and r["response"]["choices"][0]["message"]["content"] for r in records)
    no_engine_processes_left(flow_result["server"]["job_id"], within=30)
