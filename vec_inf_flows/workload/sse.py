"""Server-sent events from a streamed completion, reassembled into the non-streamed shape.

Streaming is only asked for to measure time to first token; the output file should not care,
so the chunks are folded back into one ``chat.completion`` / ``text_completion`` object.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from vec_inf_flows.workload.request import RequestKind

DONE = "[DONE]"


class StreamError(Exception):
    """The server reported an error inside the stream, after a 200."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


async def iter_sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Yield each event's data (multi-line data joined by newlines), ending at ``[DONE]``."""
    buffer: list[str] = []
    async for line in lines:
        if line == "":
            if buffer:
                data = "\n".join(buffer)
                buffer = []
                if data == DONE:
                    return
                yield data
            continue
        if line.startswith(":"):
            continue  # an SSE comment (keep-alive)
        field, _, value = line.partition(":")
        if field == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer and "\n".join(buffer) != DONE:
        yield "\n".join(buffer)


class StreamAssembler:
    """Folds completion chunks into one response; notices the first token."""

    def __init__(self, kind: RequestKind) -> None:
        self.kind = kind
        self.header: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.events = 0
        self._choices: dict[int, dict[str, Any]] = {}

    def feed(self, data: str) -> bool:
        """Take one event's data; True when it carried the first generated text."""
        event = json.loads(data)
        if not isinstance(event, dict):
            raise StreamError("stream event is not a JSON object", None)
        if "error" in event:
            raise _stream_error(event["error"])
        self.events += 1
        if not self.header:
            self.header = {key: event[key] for key in ("id", "created", "model") if key in event}
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        had_text = self.has_text
        for choice in event.get("choices") or []:
            self._merge(choice)
        return not had_text and self.has_text

    @property
    def has_text(self) -> bool:
        key = "content" if self.kind is RequestKind.CHAT else "text"
        return any(choice.get(key) for choice in self._choices.values())

    def response(self) -> dict[str, Any]:
        chat = self.kind is RequestKind.CHAT
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            choice: dict[str, Any] = {"index": index}
            if chat:
                message = {"role": state.get("role", "assistant"), "content": state["content"]}
                if state.get("reasoning_content"):
                    message["reasoning_content"] = state["reasoning_content"]
                choice["message"] = message
            else:
                choice["text"] = state["text"]
            choice["finish_reason"] = state.get("finish_reason")
            choice["stop_reason"] = state.get("stop_reason")
            choices.append(choice)
        body: dict[str, Any] = dict(self.header)
        body["object"] = "chat.completion" if chat else "text_completion"
        body["choices"] = choices
        if self.usage is not None:
            body["usage"] = self.usage
        return body

    def _merge(self, choice: dict[str, Any]) -> None:
        index = int(choice.get("index", 0))
        text_key = "content" if self.kind is RequestKind.CHAT else "text"
        state = self._choices.setdefault(index, {text_key: ""})
        piece = choice.get("delta") if self.kind is RequestKind.CHAT else choice
        if isinstance(piece, dict):
            if self.kind is RequestKind.CHAT and piece.get("role"):
                state["role"] = piece["role"]
            for key in (text_key, "reasoning_content"):
                if isinstance(piece.get(key), str):
                    state[key] = state.get(key, "") + piece[key]
        for key in ("finish_reason", "stop_reason"):
            if choice.get(key) is not None:
                state[key] = choice[key]


def _stream_error(error: object) -> StreamError:
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) else None
        return StreamError(str(error.get("message", error)), status)
    return StreamError(str(error), None)
