"""Validating OpenAI-style request bodies the way vLLM does, with vLLM's error messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vec_inf_flows.sim import tokens
from vec_inf_flows.sim.bodies import error
from vec_inf_flows.sim.vocab import Tokens, Vocab


class RequestError(Exception):
    """A client error: carries the status and vLLM's error envelope."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def bad_request(message: str, param: str | None = None) -> RequestError:
    return RequestError(400, error(message, "BadRequestError", 400, param))


def parse_json(raw: bytes) -> dict[str, Any]:
    """vLLM (FastAPI/pydantic) reports broken JSON as a 400 'json_invalid' validation error."""
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        detail = (
            "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body." + str(exc.pos) + "', "
            "'msg': 'JSON decode error', 'input': '<dict of 0 items>', "
            "'ctx': {'error': '" + exc.msg + "'}}"
        )
        raise RequestError(400, error(detail, "Bad Request", 400, f"body.{exc.pos}")) from None
    if not isinstance(body, dict):
        raise RequestError(400, error("Input should be a valid dictionary", "Bad Request", 400))
    return body


def _missing(field: str) -> RequestError:
    detail = (
        "1 validation error:\n  {'type': 'missing', 'loc': ('body', '" + field + "'), "
        "'msg': 'Field required', 'input': {}}"
    )
    return RequestError(400, error(detail, "Bad Request", 400, field))


@dataclass(frozen=True)
class GenerationRequest:
    """A completion or chat request reduced to what the engine needs (one entry per prompt)."""

    model: str | None
    prompts: tuple[Tokens, ...]
    max_tokens: int
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    ignore_eos: bool
    chat: bool
    logprobs: int | None = None  # completions: how many alternatives per token (0 = none)
    echo: bool = False


def check_model(body: dict[str, Any], served: tuple[str, ...]) -> str:
    """vLLM answers 404 for a name it does not serve; no name means the first served one."""
    name = body.get("model")
    if name is None:
        return served[0]
    if name not in served:
        message = f"The model `{name}` does not exist. Valid aliases: {', '.join(served)}."
        raise RequestError(404, error(message, "NotFoundError", 404, "model"))
    return str(name)


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    )


def _prompts_of(body: dict[str, Any], vocab: Vocab) -> tuple[Tokens, ...]:
    """A string, a list of token ids, or a batch of either (vLLM accepts all four)."""
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if isinstance(prompt, str) or (_is_ids(prompt) and prompt):
        batch: list[Any] = [prompt]
    elif isinstance(prompt, list) and not prompt:
        raise bad_request("You must pass at least one prompt")
    elif isinstance(prompt, list) and (
        all(isinstance(p, str) for p in prompt) or all(_is_ids(p) and p for p in prompt)
    ):
        batch = prompt
    else:
        raise RequestError(
            400,
            error(
                "1 validation error:\n  {'type': 'string_type', 'loc': 'body.prompt', "
                "'msg': 'Input should be a valid string, a list of token ids, or a list of "
                "either', 'input': '<list>'}",
                "Bad Request",
                400,
                "body.prompt",
            ),
        )
    try:
        return tuple(vocab.from_text(p) if isinstance(p, str) else vocab.from_ids(p) for p in batch)
    except ValueError as exc:
        raise bad_request(str(exc), "prompt") from None


def _messages_of(body: dict[str, Any], vocab: Vocab) -> tuple[Tokens, ...]:
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise bad_request("messages must be a list of objects.", "messages")
    return (vocab.from_text(tokens.render_chat(messages)),)


def _logprobs_of(body: dict[str, Any], *, chat: bool, max_logprobs: int) -> int | None:
    """Completions' ``logprobs: k`` (chat's logprobs are not simulated and stay null)."""
    value = body.get("logprobs")
    if chat or value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(f"logprobs must be a non-negative integer, got {value!r}.", "logprobs")
    if value > max_logprobs:
        raise bad_request(
            f"Requested sample logprobs of {value}, which is greater than max allowed: "
            f"{max_logprobs} (parameter=logprobs, value={value})",
            "logprobs",
        )
    return value


def parse_generation(
    body: dict[str, Any],
    *,
    chat: bool,
    max_model_len: int,
    vocab: Vocab,
    max_logprobs: int = 20,
) -> GenerationRequest:
    prompts = _messages_of(body, vocab) if chat else _prompts_of(body, vocab)
    prompt_tokens = max(len(p) for p in prompts)
    if chat:
        requested = body.get("max_completion_tokens", body.get("max_tokens"))
    else:
        requested = body.get("max_tokens", 16)
    if requested is not None and (not isinstance(requested, int) or requested < 1):
        raise bad_request(f"max_tokens must be at least 1, got {requested}.", "max_tokens")
    if requested is not None and requested > max_model_len:
        raise bad_request(
            f"max_tokens={requested} cannot be greater than max_model_len={max_model_len}. "
            f"Please request fewer output tokens. (parameter=max_tokens, value={requested})",
            "max_tokens",
        )
    if prompt_tokens >= max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"request has {prompt_tokens} input tokens. Please reduce the length of the input "
            "messages.",
            "input_tokens",
        )
    max_tokens = requested if requested is not None else max_model_len - prompt_tokens
    if prompt_tokens + max_tokens > max_model_len:
        raise bad_request(
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {max_model_len} tokens and your request has "
            f"{prompt_tokens} input tokens ({max_tokens} > {max_model_len} - {prompt_tokens}).",
            "max_tokens",
        )
    if body.get("n", 1) not in (1, None):
        raise bad_request("The simulator supports only n=1.", "n")
    echo = bool(body.get("echo", False)) and not chat
    stream = bool(body.get("stream", False))
    if stream and (echo or len(prompts) > 1):
        raise bad_request("The simulator streams one prompt per request, without echo.", "stream")
    stop = body.get("stop") or ()
    stop_strings = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
    options = body.get("stream_options") or {}
    return GenerationRequest(
        model=body.get("model"),
        prompts=prompts,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        stop=stop_strings,
        ignore_eos=bool(body.get("ignore_eos", False)),
        chat=chat,
        logprobs=_logprobs_of(body, chat=chat, max_logprobs=max_logprobs),
        echo=echo,
    )


def parse_embedding_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if raw is None:
        raise _missing("input")
    items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    return [item if isinstance(item, str) else " ".join(str(t) for t in item) for item in items]
