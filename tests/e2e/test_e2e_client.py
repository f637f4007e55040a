"""The Python API end to end: real sbatch/squeue/sacct/scancel, a real simulator over HTTP."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from e2e_helpers import SIM, Sandbox
from testkit import POLL_INTERVAL, READY_TIMEOUT

from vec_inf_flows.errors import ServerError, SlurmPermanentError
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.models import ServerStatus

MODEL = "SmolLM2-135M-Instruct"


def test_launch_wait_status_metrics_shutdown(sandbox: Sandbox) -> None:
    client = sandbox.client
    launched = client.launch(MODEL, **SIM, vllm_args="--sim-startup-delay=0.5")
    paths = JobPaths.for_job(sandbox.logs, "SmolLM2", MODEL, launched.job_id)
    assert paths.script.exists() and paths.json.exists()
    assert json.loads(paths.json.read_text())["job_id"] == launched.job_id

    ready = client.wait_until_ready(
        launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL
    )
    assert ready.server_status is ServerStatus.READY
    assert ready.base_url is not None and ready.base_url.endswith("/v1")
    # the URL the job recorded is the one status reports, and it serves real completions
    assert json.loads(paths.json.read_text())["server_address"] == ready.base_url
    reply = httpx.post(
        f"{ready.base_url}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.json()["usage"]["completion_tokens"] == 8

    first = client.metrics(launched.job_id)
    assert first.metrics.successful_requests == 1
    assert first.metrics.total_generation_tokens == 8
    second = client.metrics(launched.job_id, previous=first)
    assert second.metrics.generation_throughput == 0.0  # idle: zero, not the last rate

    assert client.shutdown(launched.job_id) == [launched.job_id]
    deadline = time.monotonic() + 30
    while (status := client.status(launched.job_id)).server_status is not ServerStatus.SHUTDOWN:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status.base_url is None
    assert sandbox.squeue_ids() == set()


def test_fatal_engine_error_is_failed_within_seconds_with_that_line(sandbox: Sandbox) -> None:
    client = sandbox.client
    launched = client.launch(
        MODEL, **SIM, vllm_args="--sim-startup-delay=0.2,--sim-fail-at-startup=kv-cache"
    )
    started = time.monotonic()
    with pytest.raises(ServerError, match="KV cache"):
        client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)
    assert time.monotonic() - started < 20
    status = client.status(launched.job_id)
    assert status.server_status is ServerStatus.FAILED
    assert status.failed_reason is not None and "KV cache" in status.failed_reason


def test_status_of_many_jobs_is_one_scheduler_query(sandbox: Sandbox) -> None:
    from vec_inf_flows.backends.slurm.backend import SlurmBackend
    from vec_inf_flows.client import VecInfClient

    backend = SlurmBackend()
    client = VecInfClient(backend=backend, state_dir=sandbox.home)
    ids = [client.launch(MODEL, **{**SIM, "time": "00:05:00"}).job_id for _ in range(3)]
    for job_id in ids:
        client.wait_until_ready(job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)
    before = backend.commands_run
    statuses = client.statuses(ids)
    assert [s.server_status for s in statuses] == [ServerStatus.READY] * 3
    assert backend.commands_run - before == 1  # one squeue for all three
    client.shutdown(ids)


def test_a_job_slurm_has_forgotten_is_shutdown_with_its_reason(sandbox: Sandbox) -> None:
    """MinJobAge is 10 s on the test cluster: after it, only accounting or our files remain."""
    client = sandbox.client
    launched = client.launch(MODEL, **SIM)
    client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)
    client.shutdown(launched.job_id)
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            ["squeue", "-h", "--states=all", f"--jobs={launched.job_id},0"],
            capture_output=True,
            text=True,
        ).stdout
        if launched.job_id not in out.split():
            break
        assert time.monotonic() < deadline, "Slurm kept the ended job past MinJobAge"
        time.sleep(2)
    status = client.status(launched.job_id)
    assert status.server_status is ServerStatus.SHUTDOWN
    assert status.detail  # says why: shut down on request / cancelled


def test_permanent_slurm_error_fails_at_once_and_leaves_nothing(sandbox: Sandbox) -> None:
    with pytest.raises(SlurmPermanentError, match="partition"):
        sandbox.client.launch(MODEL, **SIM, partition="no-such-partition")
    assert sandbox.job_ids() == []
    assert not sandbox.logs.exists() or not any(sandbox.logs.rglob("*.slurm"))


def test_same_model_launched_at_the_same_moment_gets_separate_job_dirs(sandbox: Sandbox) -> None:
    results: list[str] = []

    def launch() -> None:
        results.append(sandbox.client.launch(MODEL, **{**SIM, "time": "00:05:00"}).job_dir)

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 2
    for job_dir in results:
        assert len(list(__import__("pathlib").Path(job_dir).glob("*.slurm"))) == 1


def test_batch_launch_runs_one_hetjob_with_a_server_per_component(sandbox: Sandbox) -> None:
    batch_file = sandbox.home.parent / "batch.yaml"
    batch_file.write_text(
        "models:\n"
        "  SmolLM2-135M-Instruct:\n    engine: sim\n    time: '00:05:00'\n"
        "  all-MiniLM-L6-v2:\n    engine: sim\n    time: '00:05:00'\n"
    )
    response = sandbox.client.batch_launch(
        ["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"], batch_config=batch_file
    )
    assert response.job_ids == [f"{response.job_id}+0", f"{response.job_id}+1"]
    ready = [
        sandbox.client.wait_until_ready(j, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)
        for j in response.job_ids
    ]
    assert [r.model_name for r in ready] == ["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"]
    embedding = httpx.post(
        f"{ready[1].base_url}/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": ["a cat"]},
        timeout=10,
    )
    assert embedding.status_code == 200 and len(embedding.json()["data"][0]["embedding"]) == 384
    sandbox.client.shutdown([response.job_id])
    deadline = time.monotonic() + 30
    while sandbox.squeue_ids():
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_api_key_protects_the_server_and_never_lands_in_files(sandbox: Sandbox) -> None:
    key = "sk-test-very-secret-4242"
    launched = sandbox.client.launch(MODEL, **SIM, api_key=key, env="HF_TOKEN=hf_secret_777")
    ready = sandbox.client.wait_until_ready(
        launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL
    )
    assert ready.base_url is not None
    body = {"model": MODEL, "prompt": "x", "max_tokens": 2}
    assert httpx.post(f"{ready.base_url}/completions", json=body, timeout=10).status_code == 401
    ok = httpx.post(
        f"{ready.base_url}/completions",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert ok.status_code == 200
    job_dir = sandbox.logs / "SmolLM2" / f"{MODEL}.{launched.job_id}"
    for path in job_dir.iterdir():
        text = path.read_text(errors="replace")
        if path.name == ".secrets.env":
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            continue
        assert key not in text and "hf_secret_777" not in text, path.name
    for path in job_dir.iterdir():
        assert not path.stat().st_mode & 0o002, f"{path.name} is world-writable"
    sandbox.client.shutdown(launched.job_id)


def test_a_launch_that_fails_after_submitting_leaves_no_job_and_no_files(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The seam broken on purpose: scontrol refuses the release of the held job."""
    from vec_inf_flows.backends.slurm.backend import RetryPolicy, SlurmBackend
    from vec_inf_flows.backends.slurm.commands import SlurmCommands
    from vec_inf_flows.client import VecInfClient

    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'scontrol: error: Access/permission denied' >&2\nexit 1\n")
    scontrol.chmod(0o755)
    backend = SlurmBackend(
        commands=SlurmCommands(scontrol=str(scontrol)), retry=RetryPolicy(attempts=1)
    )
    client = VecInfClient(backend=backend, state_dir=sandbox.home)
    with pytest.raises(SlurmPermanentError, match="permission denied"):
        client.launch(MODEL, **SIM)
    assert sandbox.job_ids() == []
    assert not any(sandbox.logs.rglob("*.json"))
    names = subprocess.run(
        ["squeue", "-h", "-o", "%j %T"], capture_output=True, text=True, check=True
    ).stdout
    assert not [line for line in names.splitlines() if "PENDING" in line and MODEL in line]
