"""The HTTP surface of ``vllm serve``: routes, auth, error envelopes and the fault hooks.

Generation routes exist only for the generate runner and ``/v1/embeddings`` only for pooling,
so the wrong kind of request gets the same bare 404 ``{"detail":"Not Found"}`` as vLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vec_inf_flows.sim import bodies, tokens
from vec_inf_flows.sim.answers import AnswerBook
from vec_inf_flows.sim.config import VLLM_VERSION, SimConfig
from vec_inf_flows.sim.engine import Engine, EngineDeadError, Sequence
from vec_inf_flows.sim.generation import Planned, Planner
from vec_inf_flows.sim.metrics import VllmCollector, render
from vec_inf_flows.sim.requests import (
    GenerationRequest,
    RequestError,
    check_model,
    parse_embedding_inputs,
    parse_generation,
    parse_json,
)
from vec_inf_flows.sim.vllm_log import VllmLog
from vec_inf_flows.sim.vocab import ToyVocab, Vocab

PROTECTED_PREFIXES = ("/v1/", "/v2/", "/inference/")
DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."


@dataclass
class SimState:
    """Everything the request handlers share."""

    config: SimConfig
    engine: Engine
    collector: VllmCollector
    log: VllmLog
    rng: random.Random
    on_startup: Callable[[], None] = lambda: None
    dead: bool = False
    vocab: Vocab = field(default_factory=ToyVocab)
    answers: AnswerBook = field(default_factory=lambda: AnswerBook(()))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _dead_response() -> Response:
    return _json(bodies.error(DEAD_MESSAGE, "InternalServerError", 500), 500)


class Handlers:
    """Route handlers bound to one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.s = state

    # -- health and info -------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return Response(status_code=503 if self.s.dead else 200)

    async def version(self, request: Request) -> Response:
        return _json({"version": VLLM_VERSION})

    async def load(self, request: Request) -> Response:
        tracked = self.s.engine.in_flight if self.s.config.enable_server_load_tracking else 0
        return _json({"server_load": tracked})

    async def metrics(self, request: Request) -> Response:
        body, content_type = render(self.s.collector)
        return Response(body, headers={"content-type": content_type})

    async def models(self, request: Request) -> Response:
        c = self.s.config
        return _json(bodies.model_cards(c.served_model_names, c.model, c.max_model_len))

    async def tokenize(self, request: Request) -> Response:
        try:
            body = parse_json(await request.body())
            if "messages" in body:
                text = tokens.render_chat(list(body["messages"]))
            else:
                text = str(body.get("prompt", ""))
        except RequestError as exc:
            return _json(exc.body, exc.status)
        encoded = self.s.vocab.from_text(text)
        return _json(
            {
                "count": len(encoded),
                "max_model_len": self.s.config.max_model_len,
                "tokens": list(encoded.ids),
                "token_strs": list(encoded.pieces) if body.get("return_token_strs") else None,
            }
        )

    async def detokenize(self, request: Request) -> Response:
        try:
            body = parse_json(await request.body())
        except RequestError as exc:
            return _json(exc.body, exc.status)
        ids = body.get("tokens") or []
        return _json({"prompt": self.s.vocab.decode([int(i) for i in ids])})

    # -- generation ------------------------------------------------------------------------
    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    def _overloaded(self) -> Response | None:
        if self.s.config.error_rate and self.s.rng.random() < self.s.config.error_rate:
            body = bodies.error(
                "The server is temporarily overloaded; please retry the request.",
                "ServiceUnavailableError",
                503,
            )
            return _json(body, 503, headers={"Retry-After": "1"})
        return None

    async def _generate(self, request: Request, *, chat: bool) -> Response:
        if (refused := self._overloaded()) is not None:
            return refused
        c = self.s.config
        try:
            body = parse_json(await request.body())
            model = check_model(body, c.served_model_names)
            req = parse_generation(
                body,
                chat=chat,
                max_model_len=c.max_model_len,
                vocab=self.s.vocab,
                max_logprobs=c.max_logprobs,
            )
        except RequestError as exc:
            if exc.status == 404:
                self._log_model_error(exc.body)
            return _json(exc.body, exc.status)
        if self.s.dead:
            return _dead_response()
        planner = Planner(c.seed, self.s.vocab, self.s.answers)
        plans = [planner.plan(prompt, req) for prompt in req.prompts]
        seqs = [_sequence(p, req.max_tokens) for p in plans]
        request_id = bodies.new_id("chatcmpl" if chat else "cmpl")
        if req.stream:
            frames = self._frames(seqs[0], req, request_id, model, plans[0], planner)
            return StreamingResponse(frames, media_type="text/event-stream; charset=utf-8")
        died = False
        try:
            async with asyncio.TaskGroup() as group:
                for seq in seqs:
                    group.create_task(self._drain(seq))
        except* EngineDeadError:
            died = True
        if died:
            return _dead_response()
        prompt_tokens = sum(len(p.prompt) for p in plans)
        completion_tokens = sum(len(p.output.tokens) for p in plans)
        if chat:
            out = plans[0].output
            return _json(
                bodies.chat(
                    request_id,
                    model,
                    out.text,
                    out.finish_reason,
                    out.stop_reason,
                    prompt_tokens,
                    completion_tokens,
                )
            )
        choices = [planner.choice(i, p, req) for i, p in enumerate(plans)]
        return _json(
            bodies.completion(request_id, model, choices, prompt_tokens, completion_tokens)
        )

    async def _drain(self, seq: Sequence) -> None:
        async with contextlib.aclosing(self.s.engine.stream(seq)) as batches:
            async for _ in batches:
                pass

    async def _frames(
        self,
        seq: Sequence,
        req: GenerationRequest,
        request_id: str,
        model: str,
        planned: Planned,
        planner: Planner,
    ) -> AsyncIterator[bytes]:
        stop_reason = planned.output.stop_reason
        per_token = (
            planner.output_logprobs(planned, req.logprobs) if req.logprobs is not None else None
        )
        writer = bodies.ChunkWriter(request_id, model, chat_mode=req.chat)
        if req.chat:
            yield writer.role()
        total, sent = len(seq.output), 0
        try:
            async with contextlib.aclosing(self.s.engine.stream(seq)) as batches:
                async for batch in batches:
                    frames = []
                    for text in batch:
                        sent += 1
                        last = sent == total
                        frame = writer.token(
                            text,
                            seq.finish_reason if last else None,
                            stop_reason if last else None,
                            last=last,
                            logprobs=per_token[sent - 1] if per_token else None,
                        )
                        if last and not req.include_usage:
                            frame = writer.finish_fingerprint(frame)
                        frames.append(frame)
                    yield b"".join(frames)
        except EngineDeadError:
            yield bodies.sse(bodies.error(DEAD_MESSAGE, "InternalServerError", 500))
        else:
            if req.include_usage:
                yield writer.usage(len(planned.prompt), total)
        yield writer.done()

    def _log_model_error(self, body: dict[str, Any]) -> None:
        e = body["error"]
        self.s.log.error(
            "serving.py:274",
            f"Error with model error=ErrorInfo(message={e['message']!r}, type={e['type']!r}, "
            f"param={e['param']!r}, code={e['code']})",
        )

    # -- pooling ---------------------------------------------------------------------------
    async def embeddings(self, request: Request) -> Response:
        if (refused := self._overloaded()) is not None:
            return refused
        c = self.s.config
        try:
            body = parse_json(await request.body())
            model = check_model(body, c.served_model_names)
            inputs = parse_embedding_inputs(body)
        except RequestError as exc:
            return _json(exc.body, exc.status)
        prompt_tokens = sum(tokens.count_tokens(text) for text in inputs)
        seq = Sequence(prompt_tokens=prompt_tokens, output=(), finish_reason="stop", max_tokens=1)
        try:
            async with contextlib.aclosing(self.s.engine.stream(seq)) as batches:
                async for _ in batches:
                    pass
        except EngineDeadError:
            return _dead_response()
        vectors = [tokens.embed(c.seed, text, c.embedding_dim) for text in inputs]
        return _json(bodies.embeddings(bodies.new_id("embd"), model, vectors, prompt_tokens))


def _sequence(planned: Planned, max_tokens: int) -> Sequence:
    return Sequence(
        prompt_tokens=len(planned.prompt),
        output=planned.output.tokens,
        finish_reason=planned.output.finish_reason,
        max_tokens=max_tokens,
        prefix_key=planned.prompt.ids,
    )


def routes(handlers: Handlers, runner: str) -> list[Route]:
    """The routes vLLM registers for this runner (the rest answer 404, as in vLLM)."""
    common = [
        Route("/load", handlers.load, methods=["GET"]),
        Route("/version", handlers.version, methods=["GET"]),
        Route("/health", handlers.health, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/tokenize", handlers.tokenize, methods=["POST"]),
        Route("/detokenize", handlers.detokenize, methods=["POST"]),
        Route("/v1/models", handlers.models, methods=["GET"]),
        Route("/ping", handlers.health, methods=["GET", "POST"]),
    ]
    if runner == "pooling":
        return [*common, Route("/v1/embeddings", handlers.embeddings, methods=["POST"])]
    return [
        *common,
        Route("/v1/chat/completions", handlers.chat, methods=["POST"]),
        Route("/v1/completions", handlers.completions, methods=["POST"]),
    ]


class GuardMiddleware:
    """API-key check on /v1, /v2, /inference, and the connection-drop fault."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.s = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.s.config.api_keys and not self._authorized(scope):
            await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send)
            return
        if self.s.config.drop_rate and self.s.rng.random() < self.s.config.drop_rate:
            await _drop_connection(receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = value.partition(" ")
        return scheme.lower() == "bearer" and token in self.s.config.api_keys


async def _drop_connection(receive: Receive, send: Send) -> None:
    """Close the TCP connection without a byte of response (uvicorn's transport, if exposed)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("simulated connection drop")
    message = await receive()  # drain the body first: closing on unread bytes sends a RST
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return _json({"detail": exc.detail if isinstance(exc, HTTPException) else "Error"}, status)


def build_app(state: SimState) -> ASGIApp:
    handlers = Handlers(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.engine.start()
        state.on_startup()
        yield
        await state.engine.stop()

    app = Starlette(
        routes=routes(handlers, state.config.runner),
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    return GuardMiddleware(app, state)
