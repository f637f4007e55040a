"""One input record turned into one OpenAI-compatible request.

Validation here is deliberately shallow: it rejects what we cannot send at all (no content, two
kinds of content, an unusable id). Sampling parameters are passed through untouched so the
server, which knows its own limits, is the judge; its 4xx becomes that request's error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RequestKind(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"

    @property
    def path(self) -> str:
        """The endpoint under the server's ``/v1`` base URL."""
        return _PATHS[self]


_PATHS = {
    RequestKind.CHAT: "/chat/completions",
    RequestKind.COMPLETION: "/completions",
    RequestKind.EMBEDDING: "/embeddings",
}
_CONTENT_KEYS = {
    "messages": RequestKind.CHAT,
    "prompt": RequestKind.COMPLETION,
    "input": RequestKind.EMBEDDING,
}
_CONTENT_OF = {kind: key for key, kind in _CONTENT_KEYS.items()}
# What the answer is scored against; kept out of the request body (a server would refuse it).
REFERENCE_KEYS = ("expected", "reference")
# Defaults that make sense for an embedding request; generation defaults (max_tokens ...) would
# only be rejected or ignored by the server, so they are not applied to embeddings.
_EMBEDDING_DEFAULTS = frozenset(
    {"model", "encoding_format", "dimensions", "user", "truncate_prompt_tokens"}
)


class InputLineError(ValueError):
    """A record that cannot become a request; the message names the problem, not the line."""


@dataclass(frozen=True)
class WorkRequest:
    """A request ready to send: ``body`` is the complete JSON body, model included."""

    id: str
    line: int
    kind: RequestKind
    body: dict[str, Any]
    reference: Any = None  # the record's expected answer, if it has one

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def max_tokens(self) -> int:
        """The generation it asks for at most (0 when it does not say): a replica's share of
        the work still to do, which a count of requests hides when one is far longer."""
        for key in ("max_tokens", "max_completion_tokens"):
            value = self.body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0


def derived_id(line: int, raw: bytes) -> str:
    """An id stable across reruns of the same file: the line number plus a content hash."""
    return f"line{line}-{hashlib.sha256(raw).hexdigest()[:12]}"


def explicit_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputLineError(f"'id' must be a string or an integer, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InputLineError("'id' is empty")
    return text


def reference_of(record: Mapping[str, Any]) -> Any:
    """The record's ``expected`` or ``reference`` value (None when it has neither)."""
    given = [key for key in REFERENCE_KEYS if record.get(key) is not None]
    if len(given) > 1:
        raise InputLineError("has both 'expected' and 'reference'; use one")
    return record[given[0]] if given else None


def build_request(
    record: Mapping[str, Any],
    *,
    line: int,
    fallback_id: str,
    defaults: Mapping[str, Any],
) -> WorkRequest:
    """Turn one decoded record into a request, or raise ``InputLineError``."""
    request_id = explicit_id(record["id"]) if record.get("id") is not None else fallback_id
    present = [key for key in _CONTENT_KEYS if record.get(key) not in (None, "")]
    if not present:
        raise InputLineError("needs one of 'messages', 'prompt' or 'input'")
    if len(present) > 1:
        raise InputLineError(f"has both {present[0]!r} and {present[1]!r}; use exactly one")
    skipped = ("id", *REFERENCE_KEYS)
    params = {key: value for key, value in record.items() if key not in skipped}
    return assemble(
        request_id, line, _CONTENT_KEYS[present[0]], params, defaults, reference_of(record)
    )


def assemble(
    request_id: str,
    line: int,
    kind: RequestKind,
    params: Mapping[str, Any],
    defaults: Mapping[str, Any],
    reference: Any = None,
) -> WorkRequest:
    """The request body: the defaults (only those an embedding takes, for one) under the
    record's own parameters; its content checked, its model required."""
    _check_content(kind, params.get(_CONTENT_OF[kind]))
    given = {key: value for key, value in params.items() if value is not None}
    applied = (
        {k: v for k, v in defaults.items() if k in _EMBEDDING_DEFAULTS}
        if kind is RequestKind.EMBEDDING
        else dict(defaults)
    )
    body = {**applied, **given}
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InputLineError("no model: give 'model' in the record or as a default")
    return WorkRequest(id=request_id, line=line, kind=kind, body=body, reference=reference)


def _check_content(kind: RequestKind, value: object) -> None:
    if kind is RequestKind.CHAT:
        if not isinstance(value, list) or not value:
            raise InputLineError("'messages' must be a non-empty list")
        for position, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise InputLineError(f"'messages'[{position}] must be an object with a 'role'")
    elif value in (None, ""):
        raise InputLineError(f"needs '{_CONTENT_OF[kind]}'")
    elif not isinstance(value, str | list):
        raise InputLineError(f"'{_CONTENT_OF[kind]}' must be a string or a list")
