"""JSON bodies in vLLM 0.32's exact shapes and key order (compared against recordings in tests)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from vec_inf_flows.sim.config import VLLM_VERSION

FINGERPRINT = f"vllm-{VLLM_VERSION}-{secrets.token_hex(4)}"


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def error(message: str, kind: str, code: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def model_cards(names: tuple[str, ...], root: str, max_model_len: int) -> dict[str, Any]:
    created = int(time.time())
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": root,
                "parent": None,
                "max_model_len": max_model_len,
                "permission": [
                    {
                        "id": new_id("modelperm"),
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in names
        ],
    }


def usage(prompt: int, completion: int, *, details: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    if details:
        body |= {"prompt_tokens_details": None, "completion_tokens_details": None}
    return body


def completion_choice(
    index: int,
    text: str,
    finish: str,
    stop_reason: str | None,
    logprobs: dict[str, Any] | None = None,
    prompt_logprobs: list[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    return {
        "index": index,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": finish,
        "stop_reason": stop_reason,
        "token_ids": None,
        "prompt_logprobs": prompt_logprobs,
        "prompt_token_ids": None,
        "routed_experts": None,
    }


def completion(
    request_id: str,
    model: str,
    choices: list[dict[str, Any]],
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """One completion body for any number of prompts (usage sums over them, as in vLLM)."""
    return {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": FINGERPRINT,
        "usage": usage(prompt_tokens, completion_tokens),
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def chat(
    request_id: str,
    model: str,
    text: str,
    finish: str,
    stop_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "reasoning": None,
    }
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": stop_reason,
                "token_ids": None,
                "routed_experts": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": FINGERPRINT,
        "usage": usage(prompt_tokens, completion_tokens),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def embeddings(
    request_id: str, model: str, vectors: list[list[float]], prompt_tokens: int
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": [
            {"index": i, "object": "embedding", "embedding": vector}
            for i, vector in enumerate(vectors)
        ],
        "usage": usage(prompt_tokens, 0),
    }


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class ChunkWriter:
    """Builds the SSE frames of one streamed response (chat or completion), as vLLM orders them."""

    def __init__(self, request_id: str, model: str, *, chat_mode: bool) -> None:
        self.request_id = request_id
        self.model = model
        self.chat_mode = chat_mode
        self.created = int(time.time())

    def _head(self) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat_mode else "text_completion"
        return {"id": self.request_id, "object": kind, "created": self.created, "model": self.model}

    def role(self) -> bytes:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        return sse(
            self._head() | {"choices": [choice], "prompt_token_ids": None, "prompt_text": None}
        )

    def token(
        self,
        text: str,
        finish: str | None = None,
        stop_reason: str | None = None,
        *,
        last: bool,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0}
        if self.chat_mode:
            choice |= {"delta": {"content": text}, "logprobs": None, "finish_reason": finish}
            if last:
                choice["stop_reason"] = stop_reason
            choice["token_ids"] = None
        else:
            choice |= {
                "text": text,
                "logprobs": logprobs,
                "finish_reason": finish,
                "stop_reason": stop_reason,
                "prompt_token_ids": None,
                "token_ids": None,
            }
        body = self._head() | {"choices": [choice]}
        return sse(body)

    def finish_fingerprint(self, frame: bytes) -> bytes:
        """The last token frame carries the fingerprint when no usage frame follows."""
        payload = json.loads(frame[len(b"data: ") :])
        payload["system_fingerprint"] = FINGERPRINT
        return sse(payload)

    def usage(self, prompt: int, completion: int) -> bytes:
        body = self._head() | {
            "choices": [],
            "usage": usage(prompt, completion, details=False),
            "system_fingerprint": FINGERPRINT,
        }
        return sse(body)

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
