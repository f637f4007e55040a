"""HTTP helpers against real servers on loopback: an answering one, a refusing port, a mute one."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vec_inf_flows.errors import ServerError
from vec_inf_flows.server.http import (
    check_health,
    check_health_many,
    fetch_metrics_text,
    health_url,
    list_served_models,
    metrics_url,
    server_root,
)
from vec_inf_flows.server.metrics import derive, parse_metrics

METRICS_TEXT = (
    (Path(__file__).parent.parent / "fixtures" / "metrics")
    .joinpath("vllm-0.32-cpu-metrics-trimmed.txt")
    .read_text()
)
API_KEY = "s3cret"


class _VllmLikeHandler(BaseHTTPRequestHandler):
    """Answers like vLLM: /health (empty 200), /v1/models (Bearer key), /metrics."""

    health_code = 200

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(self.health_code, b"", "application/json")
        elif self.path == "/metrics":
            self._send(200, METRICS_TEXT.encode(), "text/plain; version=1.0.0; charset=utf-8")
        elif self.path == "/v1/models":
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._send(401, b'{"error":"Unauthorized"}', "application/json")
                return
            body = {"object": "list", "data": [{"id": "smollm2", "object": "model"}]}
            self._send(200, json.dumps(body).encode(), "application/json")
        else:
            self._send(404, b'{"detail":"Not Found"}', "application/json")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _DeadEngineHandler(_VllmLikeHandler):
    health_code = 503


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def live_server() -> Iterator[str]:
    yield from _serve(_VllmLikeHandler)


@pytest.fixture
def dead_engine_server() -> Iterator[str]:
    yield from _serve(_DeadEngineHandler)


@pytest.fixture
def refused_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def mute_url() -> Iterator[str]:
    """A server that accepts connections (kernel backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://kv1-gpu03:8080/v1", "http://kv1-gpu03:8080/health"),  # the anchor's bug
        ("http://gpu042:8080/v1/", "http://gpu042:8080/health"),
        ("http://gpu042:8080", "http://gpu042:8080/health"),
        ("http://v1.example.org:80/v1", "http://v1.example.org:80/health"),
        ("https://proxy.example.org/v1node/v1", "https://proxy.example.org/v1node/health"),
        ("http://gpu042:8080/health", "http://gpu042:8080/health"),
    ],
)
def test_health_url_replaces_only_the_trailing_v1_path(base_url: str, expected: str) -> None:
    assert health_url(base_url) == expected


def test_other_urls_are_built_from_the_server_root() -> None:
    assert server_root("http://kv1-gpu03:8080/v1") == "http://kv1-gpu03:8080"
    assert metrics_url("http://kv1-gpu03:8080/v1") == "http://kv1-gpu03:8080/metrics"


@pytest.mark.parametrize("bad", ["URL NOT FOUND", "", "ftp://host/v1", "http:///v1"])
def test_a_non_url_is_a_server_error_and_an_unhealthy_result(bad: str) -> None:
    with pytest.raises(ServerError):
        server_root(bad)
    result = check_health(bad)
    assert not result.ok and result.error is not None


def test_health_200(live_server: str) -> None:
    result = check_health(live_server, timeout=2)
    assert result.ok and result.status_code == 200 and result.error is None
    assert result.url.endswith("/health")


def test_health_other_code(dead_engine_server: str) -> None:
    result = check_health(dead_engine_server, timeout=2)
    assert not result.ok
    assert (result.status_code, result.error) == (503, "HTTP 503")


def test_health_connection_refused(refused_url: str) -> None:
    result = check_health(refused_url, timeout=2)
    assert not result.ok and result.status_code is None
    assert result.error == "connection refused"


def test_health_never_hangs_on_a_mute_server(mute_url: str) -> None:
    result = check_health(mute_url, timeout=0.2)
    assert not result.ok and result.error == "no answer within 0.2 s"


def test_many_servers_are_checked_together(
    live_server: str, dead_engine_server: str, refused_url: str, mute_url: str
) -> None:
    urls = [live_server, dead_engine_server, refused_url, mute_url, live_server]
    results = check_health_many(urls, timeout=0.5)
    assert list(results) == [live_server, dead_engine_server, refused_url, mute_url]
    assert results[live_server].ok
    assert results[dead_engine_server].status_code == 503
    assert results[refused_url].error == "connection refused"
    assert results[mute_url].error == "no answer within 0.5 s"


def test_sync_many_works_inside_a_running_event_loop(live_server: str) -> None:
    async def caller() -> bool:
        return check_health_many([live_server], timeout=2)[live_server].ok

    assert asyncio.run(caller())
    assert check_health_many([]) == {}


def test_served_models_with_the_api_key(live_server: str) -> None:
    assert list_served_models(live_server, API_KEY, timeout=2) == ["smollm2"]


def test_served_models_without_the_key_is_a_clear_error(live_server: str) -> None:
    with pytest.raises(ServerError, match="API key"):
        list_served_models(live_server, None, timeout=2)


def test_served_models_unreachable_is_a_server_error(refused_url: str) -> None:
    with pytest.raises(ServerError, match="connection refused"):
        list_served_models(refused_url, API_KEY, timeout=2)


def test_metrics_text_parses_into_the_recorded_numbers(live_server: str) -> None:
    metrics = derive(parse_metrics(fetch_metrics_text(live_server, timeout=2)))
    assert metrics.successful_requests == 13
    assert metrics.total_generation_tokens == 964


def test_metrics_from_a_mute_server_time_out_as_server_error(mute_url: str) -> None:
    with pytest.raises(ServerError, match=r"no answer within 0\.2 s"):
        fetch_metrics_text(mute_url, timeout=0.2)
