"""The whole client flow on the local backend: the real renderer, launcher, simulator and client.

Nothing is faked: the rendered job script runs under bash, execs the job-side launcher, which
runs the vLLM simulator on a free port; status, metrics and shutdown go through VecInfClient.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from local_helpers import pgid_of, session_processes, wait_session_gone
from testkit import POLL_INTERVAL, READY_TIMEOUT

from vec_inf_flows.backends.local import LocalBackend
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import ServerError
from vec_inf_flows.jobs import JobPhase
from vec_inf_flows.models import ServerStatus

MODEL = "SmolLM2-135M-Instruct"


def _client(tmp_path: Path, backend: LocalBackend) -> VecInfClient:
    return VecInfClient(backend=backend, state_dir=tmp_path / "home")


def _options(tmp_path: Path, sim_args: str) -> LaunchOptions:
    return LaunchOptions(engine="sim", log_dir=str(tmp_path / "logs"), vllm_args=sim_args)


def test_launch_ready_chat_metrics_shutdown(tmp_path: Path, backend: LocalBackend) -> None:
    client = _client(tmp_path, backend)

    launched = client.launch(MODEL, _options(tmp_path, "--sim-startup-delay=0.5"))
    ready = client.wait_until_ready(
        launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL
    )

    assert ready.server_status is ServerStatus.READY
    assert ready.node == backend.query([launched.job_id])[launched.job_id].node
    assert ready.base_url is not None
    reply = httpx.post(
        f"{ready.base_url}/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=30,
    )
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["role"] == "assistant"

    metrics = client.metrics(launched.job_id)
    assert metrics.base_url == ready.base_url
    assert metrics.snapshot is not None

    session = pgid_of(backend, launched.job_id)
    assert session_processes(session, zombies=False)  # supervisor, launcher, simulator
    assert client.shutdown(launched.job_id) == [launched.job_id]

    assert session_processes(session) == []
    status = client.status(launched.job_id)
    assert status.server_status is ServerStatus.SHUTDOWN
    assert backend.query([launched.job_id])[launched.job_id].phase is JobPhase.CANCELLED


def test_engine_failing_at_start_up_is_failed_with_its_fatal_line(
    tmp_path: Path, backend: LocalBackend
) -> None:
    client = _client(tmp_path, backend)
    launched = client.launch(MODEL, _options(tmp_path, "--sim-fail-at-startup=kv-cache"))

    with pytest.raises(ServerError, match="FAILED before becoming ready"):
        client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=POLL_INTERVAL)

    status = client.status(launched.job_id)
    assert status.server_status is ServerStatus.FAILED
    reason = status.failed_reason or ""
    assert reason.startswith("ValueError: To serve at least one request")
    err_lines = Path(launched.config["err_file"]).read_text().splitlines()
    assert any(line.startswith(reason.removesuffix("...")) for line in err_lines)
    assert wait_session_gone(pgid_of(backend, launched.job_id)) == []
    record = backend.query([launched.job_id])[launched.job_id]
    assert (record.phase, record.exit_code) == (JobPhase.FAILED, "1:0")
