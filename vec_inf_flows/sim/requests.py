"""Validating OpenAI-style request bodies the way vLLM does, with vLLM's error messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vec_inf_flows.sim import tokens
from vec_inf_flows.sim.bodies import error


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
    """A completion or chat request reduced to what the engine needs."""

    model: str | None
    prompt_text: str
    prompt_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    ignore_eos: bool
    chat: bool


def check_model(body: dict[str, Any], served: tuple[str, ...]) -> str:
    """vLLM answers 404 for a name it does not serve; no name means the first served one."""
    name = body.get("model")
    if name is None:
        return served[0]
    if name not in served:
        message = f"The model `{name}` does not exist. Valid aliases: {', '.join(served)}."
        raise RequestError(404, error(message, "NotFoundError", 404, "model"))
    return str(name)


def _prompt_of(body: dict[str, Any]) -> tuple[str, int]:
    prompt = body.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt, tokens.count_tokens(prompt)
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return " ".join(str(t) for t in prompt), len(prompt)
    raise bad_request("The simulator serves one prompt per request.", "prompt")


def _messages_of(body: dict[str, Any]) -> tuple[str, int]:
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise bad_request("messages must be a list of objects.", "messages")
    text = tokens.render_chat(messages)
    return text, tokens.count_tokens(text)


def parse_generation(body: dict[str, Any], *, chat: bool, max_model_len: int) -> GenerationRequest:
    prompt_text, prompt_tokens = _messages_of(body) if chat else _prompt_of(body)
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
    stop = body.get("stop") or ()
    stop_strings = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
    options = body.get("stream_options") or {}
    return GenerationRequest(
        model=body.get("model"),
        prompt_text=prompt_text,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        stop=stop_strings,
        ignore_eos=bool(body.get("ignore_eos", False)),
        chat=chat,
    )


def parse_embedding_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if raw is None:
        raise _missing("input")
    items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    return [item if isinstance(item, str) else " ".join(str(t) for t in item) for item in items]
