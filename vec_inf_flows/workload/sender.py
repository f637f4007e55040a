"""One attempt of one request against one replica, with every failure turned into data.

Nothing here raises for a network or server problem: the caller decides on retries from the
returned ``Attempt`` (is it worth retrying, what did the server ask us to wait, what does it say
about the replica's health), which keeps the retry loop free of exception plumbing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from vec_inf_flows.workload.record import RecordError
from vec_inf_flows.workload.replicas import Outcome
from vec_inf_flows.workload.request import RequestKind, WorkRequest
from vec_inf_flows.workload.retry import is_retryable_status, parse_retry_after
from vec_inf_flows.workload.sse import StreamAssembler, StreamError, iter_sse_data


@dataclass(frozen=True)
class Attempt:
    latency_s: float
    response: dict[str, Any] | None = None
    ttft_s: float | None = None
    error: RecordError | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    health: Outcome = Outcome.OK

    @property
    def ok(self) -> bool:
        return self.response is not None and self.error is None


async def send_once(client: httpx.AsyncClient, base_url: str, request: WorkRequest) -> Attempt:
    url = base_url + request.kind.path
    started = time.perf_counter()
    try:
        if request.stream:
            return await _send_streaming(client, url, request, started)
        reply = await client.post(url, json=request.body)
        elapsed = time.perf_counter() - started
        if reply.is_success:
            return _parsed_success(reply.content, elapsed)
        return _http_failure(reply.status_code, reply.content, reply.headers, elapsed)
    except httpx.ConnectError as error:
        return _transport_failure("connection", error, started, Outcome.REFUSED)
    except httpx.TimeoutException as error:
        return _transport_failure("timeout", error, started, Outcome.SOFT_FAILURE)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
        return _transport_failure("dropped", error, started, Outcome.SOFT_FAILURE)
    except httpx.TransportError as error:
        return _transport_failure("transport", error, started, Outcome.SOFT_FAILURE)


async def _send_streaming(
    client: httpx.AsyncClient,
    url: str,
    request: WorkRequest,
    started: float,
) -> Attempt:
    body = dict(request.body)
    if request.kind is not RequestKind.EMBEDDING:
        options = dict(body.get("stream_options") or {})
        options.setdefault("include_usage", True)  # usage arrives in the last chunk
        body["stream_options"] = options
    async with client.stream("POST", url, json=body) as reply:
        if not reply.is_success:
            content = await reply.aread()
            elapsed = time.perf_counter() - started
            return _http_failure(reply.status_code, content, reply.headers, elapsed)
        assembler = StreamAssembler(request.kind)
        ttft: float | None = None
        try:
            async for data in iter_sse_data(reply.aiter_lines()):
                if assembler.feed(data) and ttft is None:
                    ttft = time.perf_counter() - started
        except StreamError as error:
            fatal = error.status is not None and not is_retryable_status(error.status)
            return Attempt(
                latency_s=time.perf_counter() - started,
                error=RecordError(type="stream_error", message=str(error), status=error.status),
                retryable=not fatal,
                health=Outcome.OK if fatal else Outcome.SOFT_FAILURE,
            )
        except ValueError as error:
            return _bad_body(f"unreadable stream event: {error}", time.perf_counter() - started)
        if assembler.events == 0:
            return _bad_body("stream ended without a single event", time.perf_counter() - started)
    return Attempt(
        latency_s=time.perf_counter() - started, response=assembler.response(), ttft_s=ttft
    )


def _parsed_success(content: bytes, elapsed: float) -> Attempt:
    try:
        body = json.loads(content)
    except ValueError:
        return _bad_body("response is not JSON", elapsed)
    if not isinstance(body, dict):
        return _bad_body("response is not a JSON object", elapsed)
    return Attempt(latency_s=elapsed, response=body)


def _bad_body(message: str, elapsed: float) -> Attempt:
    """A 200 we cannot read is most likely a body cut short: worth another try."""
    return Attempt(
        latency_s=elapsed,
        error=RecordError(type="bad_response", message=message),
        retryable=True,
        health=Outcome.SOFT_FAILURE,
    )


def _http_failure(status: int, content: bytes, headers: httpx.Headers, elapsed: float) -> Attempt:
    retryable = is_retryable_status(status)
    retry_after = parse_retry_after(headers.get("retry-after")) if retryable else None
    # A 5xx counts against the replica, unless it came with Retry-After: like a 429, that is a
    # busy server telling us when to come back, not a broken one.
    broken = status >= 500 and retry_after is None
    return Attempt(
        latency_s=elapsed,
        error=RecordError(type="http_error", message=_error_message(content), status=status),
        retryable=retryable,
        retry_after_s=retry_after,
        health=Outcome.SOFT_FAILURE if broken else Outcome.OK,
    )


def _transport_failure(
    kind: str, error: httpx.TransportError, started: float, health: Outcome
) -> Attempt:
    message = str(error) or type(error).__name__
    return Attempt(
        latency_s=time.perf_counter() - started,
        error=RecordError(type=kind, message=message),
        retryable=True,
        health=health,
    )


def _error_message(content: bytes) -> str:
    """vLLM's ``{"error": {"message": ...}}``, another server's ``{"message": ...}``, or text."""
    try:
        body = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", errors="replace").strip()
        return text[:500] or "(empty body)"
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if "message" in body:
            return str(body["message"])
        if "detail" in body:
            return str(body["detail"])
    return json.dumps(body)[:500]
