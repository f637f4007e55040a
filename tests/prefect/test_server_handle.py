"""The server handle carries what launch learned to the workload: the API key a server block
set, and the server's --max-num-seqs. Tried as a user would: a keyed server through a block,
a wrong key through the CLI, a server sized to 48 sequences; and the key is nowhere in clear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect_helpers import FAST, MODEL, READY_TIMEOUT, ClusterJobs, read_records, write_prompts
from pydantic import SecretStr

from vec_inf_flows.blocks import VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.errors import VecInfError
from vec_inf_flows.flows import serve_and_run

pytestmark = pytest.mark.prefect

KEY = "sk-handle-test-7c1e55"
CLI = Path(sys.executable).with_name("vec-inf-flows")


def everything_the_api_holds(flow_run_id: UUID) -> str:
    """The run's parameters, task runs, logs and artifacts as the UI would show them."""
    APILogHandler().flush()
    with get_client(sync_client=True) as api:
        run = api.read_flow_run(flow_run_id)
        task_runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        logs = api.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = api.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    dumped: list[Any] = [
        run.model_dump(mode="json"),
        [task_run.model_dump(mode="json") for task_run in task_runs],
        [log.message for log in logs],
        [artifact.model_dump(mode="json") for artifact in artifacts],
    ]
    return json.dumps(dumped, default=str)


def test_a_keyed_server_block_gets_every_request_through_and_the_key_stays_secret(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    server = VecInfServer(
        model_name=MODEL, options=LaunchOptions(**jobs.options()), api_key=SecretStr(KEY)
    )
    output = tmp_path / "out.jsonl"

    state = serve_and_run(
        server=server,
        dataset=write_prompts(tmp_path / "prompts.jsonl", 20),
        output=str(output),
        return_state=True,
        **FAST,
    )

    assert state.is_completed(), state.message
    result = state.result()
    assert result.workload is not None
    assert (result.workload.ok, result.workload.failed) == (20, 0)
    assert result.server.api_key is None  # results never hold the key
    (job_id,) = jobs.ids()
    job_dir = Path(jobs.client().status(job_id).job_dir or "")
    assert (job_dir / ".secrets.env").stat().st_mode & 0o077 == 0
    in_clear = {
        "the Prefect API (parameters, task runs, logs, artifacts)": everything_the_api_holds(
            state.state_details.flow_run_id
        ),
        "the result": result.model_dump_json(),
        "the output file": output.read_text(),
        "the job's script and JSON": "".join(
            path.read_text() for path in job_dir.iterdir() if path.suffix in (".slurm", ".json")
        ),
    }
    for where, text in in_clear.items():
        assert KEY not in text, f"the API key is in {where}"
    jobs.assert_none_left()


def test_a_wrong_key_fails_the_run_with_unauthorized_in_its_summary(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    client = jobs.client()
    launched = client.launch(MODEL, **jobs.options(), api_key=KEY)
    client.wait_until_ready(launched.handle, timeout=READY_TIMEOUT, poll_interval=0.5)
    VecInfServer(model_name=MODEL, api_key=SecretStr("not-the-key")).save(
        "wrong-key", overwrite=True
    )
    argv = [
        str(CLI), "run", "serve-and-run",
        "--job-id", launched.job_id,
        "--server-block", "wrong-key",
        "--input", write_prompts(tmp_path / "prompts.jsonl", 20),
        "--output", str(tmp_path / "out.jsonl"),
        "--ready-timeout", str(READY_TIMEOUT),
    ]  # fmt: skip

    done = subprocess.run(
        argv, env={**subprocess_env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert ": FAILED" in done.stdout
    assert "0 of 20 requests" in done.stdout and "20 × HTTP 401: Unauthorized" in done.stdout
    assert "not-the-key" not in done.stdout + done.stderr
    run_id = done.stdout.split("Flow run ", 1)[1].split(":", 1)[0]
    with get_client(sync_client=True) as api:
        run = api.read_flow_run(UUID(run_id))
    assert run.name == "serve-wrong-key"  # named after the server block
    assert run.state is not None and run.state.is_failed()
    assert "Unauthorized" in (run.state.message or "")
    assert jobs.in_squeue() == {launched.job_id}  # attached, so left running


def test_the_workload_fills_the_servers_max_num_seqs(jobs: ClusterJobs, tmp_path: Path) -> None:
    """48 sequences, each taking 2 s: the runner keeps the batch full (not at 16)."""
    options = jobs.options(["--max-num-seqs=48", "--sim-tokens-per-second=20", "--sim-ttft=0"])
    peak: list[float] = []
    finished = threading.Event()

    def watch() -> None:
        client = jobs.client()
        while not finished.is_set():
            ids = jobs.ids()
            try:
                running = client.metrics(ids[0]).metrics.requests_running if ids else None
            except VecInfError:  # not READY yet, or shut down
                running = None
            if running is not None:
                peak.append(running)
            finished.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = serve_and_run(
            MODEL,
            dataset=write_prompts(tmp_path / "prompts.jsonl", 240, max_tokens=40),
            output=str(tmp_path / "out.jsonl"),
            launch_options=options,
            **FAST,
        )
    finally:
        finished.set()
        watcher.join(10)

    assert result.server.max_concurrent_sequences == 48
    assert result.workload is not None and result.workload.ok == 240
    assert max(peak) == 48
    assert len(read_records(tmp_path / "out.jsonl")) == 240
    jobs.assert_none_left()
