"""Reassembling recorded vLLM streams into the non-streamed response shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vec_inf_flows.workload.request import RequestKind
from vec_inf_flows.workload.sse import StreamAssembler, StreamError, iter_sse_data

DATA = Path(__file__).parent / "data"


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.splitlines():
        yield line


def assemble(text: str, kind: RequestKind) -> tuple[StreamAssembler, list[int]]:
    async def go() -> tuple[StreamAssembler, list[int]]:
        assembler = StreamAssembler(kind)
        first_text_at = []
        position = 0
        async for data in iter_sse_data(_lines(text)):
            position += 1
            if assembler.feed(data):
                first_text_at.append(position)
        return assembler, first_text_at

    return asyncio.run(go())


def test_recorded_chat_stream() -> None:
    assembler, first = assemble((DATA / "vllm-chat-stream.sse").read_text(), RequestKind.CHAT)
    response = assembler.response()
    assert first == [2]  # the first event only carries the role and an empty string
    assert response["id"] == "chatcmpl-989c9adcc6924262"
    assert response["object"] == "chat.completion"
    choice = response["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith("Hello! I'm here")
    assert choice["finish_reason"] == "length"
    assert response["usage"] == {"prompt_tokens": 33, "total_tokens": 41, "completion_tokens": 8}


def test_recorded_completion_stream_with_no_text() -> None:
    text = (DATA / "vllm-completions-stream.sse").read_text()
    assembler, first = assemble(text, RequestKind.COMPLETION)
    response = assembler.response()
    assert first == [] and assembler.events == 4
    assert response["object"] == "text_completion"
    assert response["choices"] == [
        {"index": 0, "text": "", "finish_reason": "length", "stop_reason": None}
    ]


def test_multiline_data_comments_and_error_events() -> None:
    text = ': keep-alive\n\ndata: {"choices":\ndata: [{"index": 0, "text": "a"}]}\n\n'
    assembler, first = assemble(text + "data: [DONE]\n\n", RequestKind.COMPLETION)
    assert first == [1] and assembler.response()["choices"][0]["text"] == "a"

    bad = 'data: {"error": {"message": "engine died", "code": 500}}\n\n'
    with pytest.raises(StreamError, match="engine died") as caught:
        assemble(bad, RequestKind.CHAT)
    assert caught.value.status == 500
