"""The output format: one JSON line per input id, success or failure.

This is the boundary users and downstream jobs read, so it is a pydantic model; the response is
kept exactly as the server sent it (a streamed one is reassembled into the same shape).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RecordError(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str  # "invalid_input", "http_error", "connection", "timeout", "dropped", ...
    message: str
    status: int | None = None  # the HTTP status when the server answered


class RetryNote(BaseModel):
    """Why one attempt failed and how long we waited before the next."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    replica: str
    reason: str
    wait_s: float
    retry_after_s: float | None = None  # the server's Retry-After, when it sent one


class ResultRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    line: int
    ok: bool
    kind: str | None = None  # chat, completion, embedding
    response: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    latency_s: float | None = None  # the final attempt, request sent to response complete
    ttft_s: float | None = None  # time to the first token, streamed requests only
    elapsed_s: float | None = None  # first attempt to final answer, backoff included
    attempts: int = 0
    retries: list[RetryNote] = []
    replica: str | None = None  # base URL that gave the final answer
    error: RecordError | None = None
    score: float | None = None  # against the record's reference, when it has one
    score_error: str | None = None  # why it has no score (or scored 0 for want of an answer)

    def to_line(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode() + b"\n"
