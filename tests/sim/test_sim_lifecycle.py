"""Start-up, readiness and shutdown look and behave like ``vllm serve``, in a real subprocess."""

from __future__ import annotations

import re
import signal
import socket
import threading
from collections.abc import Callable

import httpx
import pytest
from sim_helpers import recording
from testkit import wait_until

from vec_inf_flows.errors import ServerError
from vec_inf_flows.sim.process import READY_LINE, SimServer

UVICORN_START = [
    "INFO:     Started server process [{pid}]",
    "INFO:     Waiting for application startup.",
    READY_LINE,
]
STARTUP_ORDER = [
    "non-default args:",
    "Resolved architecture:",
    "Using max model len",
    "Initializing a V1 LLM engine",
    "Starting to load model",
    "Loading weights took",
    "KV cache size:",
    "init engine (profile, create kv cache, warmup model) took",
    "Supported tasks:",
    "Starting vLLM server on http://",
    "Available routes are:",
    "Route: /health, Methods: GET",
]
VLLM_LINE = re.compile(
    r"\((APIServer|EngineCore|Worker) pid=\d+\) (INFO|WARNING|ERROR) "
    r"\d\d-\d\d \d\d:\d\d:\d\d \[[\w.]+:\d+\] "
)


def first_index(lines: list[str], marker: str) -> int:
    return next(i for i, line in enumerate(lines) if marker in line)


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll a condition (a callable) until true; fail the test after ``timeout``."""
    wait_until(condition, timeout, "the condition", interval=0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_startup_log_follows_vllms_order_and_streams() -> None:
    with SimServer(["/m/tiny", "--served-model-name", "tiny"]) as sim:
        health = httpx.get(sim.url + "/health")  # at once: the ready line means ready
        out, err = sim.stdout_lines, sim.stderr_lines
        pid = sim.process.pid
    assert health.status_code == 200
    recorded = recording("vllm-serve-startup.stdout.log").splitlines()
    for lines in (out, recorded):
        positions = [first_index(lines, marker) for marker in STARTUP_ORDER]
        assert positions == sorted(positions)
    assert err[:3] == [line.format(pid=pid) for line in UVICORN_START]
    assert all(VLLM_LINE.match(line) for line in out if line.startswith("("))
    assert not any("Uvicorn running on" in line for line in out + err)
    assert f"Starting vLLM server on {sim.url}" in "\n".join(out)


def _loading_or_gone(sim: SimServer) -> bool:
    return "Starting to load model" in sim.stdout_text or sim.process.poll() is not None


def _sim_on_a_free_port(*args: str) -> tuple[SimServer, int]:
    """An explicit port, so the test can knock before the server says where it is. A free port
    can still be taken by another process before the simulator binds it: then pick another."""
    for _ in range(3):
        port = free_port()
        sim = SimServer(["/m/tiny", "--port", str(port), *args], wait_ready=False)
        sim.start()
        wait_for(lambda sim=sim: _loading_or_gone(sim))
        if sim.process.poll() is None:
            return sim, port
        assert "Address already in use" in sim.stderr_text, sim.stderr_text
        sim.kill()
    raise AssertionError("no free port could be bound in 3 tries")


def test_a_simulator_cannot_be_started_twice() -> None:
    sim = SimServer(["/m/tiny"], wait_ready=False)
    with sim, pytest.raises(ServerError, match="already started"):
        sim.start()


def test_health_refuses_connections_until_the_ready_line() -> None:
    sim, port = _sim_on_a_free_port("--sim-startup-delay", "1.5")
    try:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health")
        assert READY_LINE not in sim.stderr_text  # so the refusal really was before ready
        sim.wait_until_ready()
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        sim.__exit__(None, None, None)


def test_sigterm_with_a_request_in_flight_exits_zero() -> None:
    sim = SimServer(["/m/tiny", "--sim-tokens-per-second", "5"])
    with sim:
        results: list[object] = []

        def slow_request() -> None:
            body = {"prompt": "long", "max_tokens": 200, "ignore_eos": True}
            try:
                results.append(httpx.post(sim.base_url + "/completions", json=body, timeout=30))
            except httpx.HTTPError as exc:  # a cut connection is also what vLLM may do
                results.append(exc)

        worker = threading.Thread(target=slow_request)
        worker.start()
        wait_for(lambda: _running(sim.url))
        code = sim.stop()
        worker.join(10)
        out, err = sim.stdout_text, sim.stderr_text
    assert code == 0
    (outcome,) = results
    if isinstance(outcome, httpx.Response):
        assert outcome.status_code == 500
        assert "EngineCore encountered an issue" in outcome.json()["error"]["message"]
    assert "[shutdown] API server: shutdown triggered" in out
    assert "[shutdown] EngineCore: trigger received signal=SIGTERM" in out
    assert "INFO:     Shutting down" in err and "INFO:     Application shutdown complete." in err
    assert "Finished server process" not in err


def _running(url: str) -> bool:
    text = httpx.get(url + "/metrics").text
    return bool(re.search(r"^vllm:num_requests_running\{[^}]*\} 1\.0$", text, re.M))


def test_sigint_also_shuts_down_cleanly() -> None:
    with SimServer(["/m/tiny"]) as sim:
        sim.process.send_signal(signal.SIGINT)
        assert sim.wait(10) == 0
        assert "trigger received signal=SIGINT" in sim.stdout_text


def test_periodic_stats_lines_while_busy() -> None:
    env = {"VLLM_LOG_STATS_INTERVAL": "0.2"}
    with SimServer(["/m/tiny", "--sim-tokens-per-second", "200"], env=env) as sim:
        body = {"prompt": "count", "max_tokens": 60, "ignore_eos": True}
        httpx.post(sim.base_url + "/completions", json=body)
        wait_for(lambda: "Engine 000: Avg prompt throughput:" in sim.stdout_text)
        line = next(x for x in sim.stdout_lines if "Engine 000:" in x)
    assert "[loggers.py:335]" in line
    assert re.search(
        r"Avg generation throughput: [\d.]+ tokens/s, Running: \d+ reqs, Waiting: \d+ reqs, "
        r"CPU KV cache usage: [\d.]+%, Prefix cache hit rate: [\d.]+%$",
        line,
    )
