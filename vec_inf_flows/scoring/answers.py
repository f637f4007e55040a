"""The part of a server's response a scorer judges: the reply text, or the embedding vector."""

from __future__ import annotations

from typing import Any

Answer = str | list[float]


class NoAnswer(ValueError):
    """The response holds nothing to score (no choices, a null content, a base64 embedding)."""


def answer_of(kind: str, response: dict[str, Any]) -> Answer:
    """Chat: the first choice's message content; completion: its text; embedding: the vector."""
    if kind == "embedding":
        data = response.get("data")
        vector = data[0].get("embedding") if isinstance(data, list) and data else None
        if isinstance(vector, list) and all(_is_number(value) for value in vector):
            return [float(value) for value in vector]
        raise NoAnswer("the response has no float embedding")
    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict):
        raise NoAnswer("the response has no choices")
    text = (first.get("message") or {}).get("content") if kind == "chat" else first.get("text")
    if not isinstance(text, str):
        raise NoAnswer("the response's first choice has no text")
    return text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
