"""Each fault flag fails the way vLLM fails: same lines, same streams, same exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from sim_helpers import recording

from vec_inf_flows.sim.process import READY_LINE, SimServer

ENGINE_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)


def run_to_exit(args: list[str], env: dict[str, str] | None = None) -> SimServer:
    sim = SimServer(args, env=env, wait_ready=False).start()
    sim.wait(20)
    return sim


@pytest.mark.parametrize(
    ("fault", "stdout_has", "stderr_has"),
    [
        ("kv-cache", "ValueError: To serve at least one request", ENGINE_FAILED),
        ("cuda-oom", "torch.OutOfMemoryError: CUDA out of memory.", ENGINE_FAILED),
        ("max-model-len", "Resolved architecture:", "1 validation error for ModelConfig"),
        ("bad-model-path", "non-default args:", "huggingface_hub.errors.HFValidationError"),
    ],
)
def test_startup_failures_exit_1_with_vllms_lines(
    fault: str, stdout_has: str, stderr_has: str
) -> None:
    sim = run_to_exit(["/m/tiny", "--sim-fail-at-startup", fault])
    assert sim.process.returncode == 1
    assert stdout_has in sim.stdout_text
    assert stderr_has in sim.stderr_text
    assert READY_LINE not in sim.stderr_text
    assert "Starting vLLM server on" not in sim.stdout_text


def test_engine_failure_lines_match_the_recording() -> None:
    sim = run_to_exit(["/m/tiny", "--sim-fail-at-startup", "kv-cache"])
    recorded_err = recording("vllm-fail-kvcache.stderr.log")
    recorded_out = recording("vllm-fail-kvcache.stdout.log")
    assert ENGINE_FAILED in recorded_err.splitlines()
    assert sim.stderr_lines[-1] == ENGINE_FAILED
    for marker in ("] EngineCore failed to start.", "] Traceback (most recent call last):"):
        assert marker in recorded_out and marker in sim.stdout_text
    assert "Process EngineCore:" in sim.stderr_text and "Process EngineCore:" in recorded_err


def test_max_model_len_beyond_the_models_config_fails_like_vllm(tmp_path: Path) -> None:
    model = tmp_path / "qwen-tiny"
    model.mkdir()
    config = {"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 1024}
    (model / "config.json").write_text(json.dumps(config))
    sim = run_to_exit([str(model), "--max-model-len", "4k"])
    assert sim.process.returncode == 1
    assert "User-specified max_model_len (4000) is greater than the derived" in sim.stderr_text
    recorded = recording("vllm-fail-maxlen.stderr.log")
    assert "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig" in (
        recorded
    )
    with SimServer([str(model)]) as sim:  # no --max-model-len: derived from config.json
        card = httpx.get(sim.base_url + "/models").json()["data"][0]
        assert card["max_model_len"] == 1024
        assert "Resolved architecture: Qwen2ForCausalLM" in sim.stdout_text


def test_error_rate_answers_503_with_retry_after() -> None:
    with SimServer(["/m/tiny"], env={"VEC_INF_SIM_ERROR_RATE": "1"}) as sim:
        response = httpx.post(sim.base_url + "/completions", json={"prompt": "x"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        assert response.json()["error"]["code"] == 503
        assert httpx.get(sim.url + "/health").status_code == 200


def test_drop_rate_closes_the_connection_without_a_response() -> None:
    with SimServer(["/m/tiny", "--sim-drop-rate", "1.0"]) as sim:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(sim.base_url + "/completions", json={"prompt": "x"})
        assert httpx.get(sim.url + "/health").status_code == 200
        assert "Exception in ASGI application" not in sim.stderr_text


def test_crash_after_n_requests_goes_unhealthy_then_exits_nonzero() -> None:
    args = ["/m/tiny", "--sim-crash-after", "2", "--sim-dead-linger", "1.5"]
    with SimServer(args) as sim:
        for _ in range(2):
            ok = httpx.post(sim.base_url + "/completions", json={"prompt": "x", "max_tokens": 3})
            assert ok.status_code == 200
        deadline = time.monotonic() + 4
        statuses = set()
        while 503 not in statuses and time.monotonic() < deadline:
            statuses.add(httpx.get(sim.url + "/health").status_code)
        assert 503 in statuses
        assert sim.wait(15) != 0
        assert "EngineDeadError: EngineCore encountered an issue." in sim.stdout_text
