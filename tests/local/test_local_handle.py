"""The server handle through the Python API and the blocks, on the local backend (no cluster):
launch returns it, waiting fills in the URL, attach rebuilds it from the job directory, the
workload sends its key and keeps its --max-num-seqs busy, and the key never shows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from local_helpers import pgid_of, session_processes
from pydantic import SecretStr
from testkit import POLL_INTERVAL, READY_TIMEOUT

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.blocks import SlurmCluster, VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import JobNotFoundError
from vec_inf_flows.handle import VLLM_DEFAULT_MAX_NUM_SEQS
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.tasks.workload import run_workload_chunk

MODEL = "SmolLM2-135M-Instruct"
KEY = "sk-local-handle-41"


def _options(tmp_path: Path, sim_args: str = "--sim-startup-delay=0.3") -> LaunchOptions:
    return LaunchOptions(engine="sim", log_dir=str(tmp_path / "logs"), vllm_args=sim_args)


def test_launch_wait_attach_work_and_shutdown_with_the_handle(
    tmp_path: Path, backend: LocalBackend
) -> None:
    client = VecInfClient(backend=backend, state_dir=tmp_path / "home")
    options = _options(tmp_path, "--sim-startup-delay=0.3,--max-num-seqs=12")

    handle = client.launch(MODEL, options, api_key=KEY).handle

    assert (handle.model_name, handle.max_concurrent_sequences) == (MODEL, 12)
    assert handle.api_key is not None and handle.api_key.get_secret_value() == KEY
    assert handle.base_url is None
    ready = client.wait_until_ready(handle, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)
    assert ready.base_url is not None and ready.job_id == handle.job_id
    # Attaching by id (another process, later) rebuilds the same handle from the job dir.
    assert client.attach(handle.job_id) == handle
    assert KEY not in ready.model_dump_json() and KEY not in repr(ready)

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"p{n}", "prompt": "Hi", "max_tokens": 2}) + "\n" for n in range(6)
        )
    )
    summary = run_workload_chunk.fn(ready, str(prompts), str(tmp_path / "out.jsonl"))
    assert (summary.ok, summary.failed) == (6, 0)  # the key went along as a bearer token
    unkeyed = run_workload_chunk.fn(
        ready.model_copy(update={"api_key": None}), str(prompts), str(tmp_path / "none.jsonl")
    )
    assert (unkeyed.ok, unkeyed.failed) == (0, 6)

    assert client.metrics(ready).metrics.successful_requests == 6
    session = pgid_of(backend, handle.job_id)
    assert client.shutdown(ready) == [handle.job_id]
    assert session_processes(session) == []
    assert client.status(ready).server_status is ServerStatus.SHUTDOWN


def test_a_server_without_max_num_seqs_gets_vllms_default(
    tmp_path: Path, backend: LocalBackend
) -> None:
    client = VecInfClient(backend=backend, state_dir=tmp_path / "home")
    handle = client.launch(MODEL, _options(tmp_path)).handle
    try:
        assert handle.max_concurrent_sequences == VLLM_DEFAULT_MAX_NUM_SEQS
        assert handle.api_key is None and client.attach(handle.job_id).api_key is None
    finally:
        client.shutdown(handle)


def test_attaching_to_a_job_without_a_record_is_one_clear_error(tmp_path: Path) -> None:
    client = VecInfClient(backend=LocalBackend(tmp_path / "state"), state_dir=tmp_path / "home")
    with pytest.raises(JobNotFoundError, match="no job record of vec-inf-flows"):
        client.attach("424242")


def test_a_server_block_launches_itself_on_its_clusters_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEC_INF_FLOWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VEC_INF_BACKEND", raising=False)
    cluster = SlurmCluster(backend="local", options=_options(tmp_path))
    server = VecInfServer(
        model_name=MODEL,
        options=LaunchOptions(vllm_args={"--max-num-seqs": 7}),
        api_key=SecretStr(KEY),
        cluster=cluster,
        ready_timeout=READY_TIMEOUT,
    )

    with server.start() as run:  # JobBlock.trigger() does the same, awaitable
        assert run.client.backend.name == "local"
        asyncio.run(run.wait_for_completion())
        handle = asyncio.run(run.fetch_result())
        assert handle.base_url is not None and handle.max_concurrent_sequences == 7
        assert run.client.status(handle).server_status is ServerStatus.READY
    assert run.client.status(handle).server_status is ServerStatus.SHUTDOWN
