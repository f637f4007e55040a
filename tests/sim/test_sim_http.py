"""Every generate-runner endpoint answers in vLLM 0.32's recorded shape, over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
from sim_helpers import RECORDED_NAME, recorded_json, recording, shape_diff, sse_payloads

from vec_inf_flows.sim.process import SimServer

CHAT = {"model": RECORDED_NAME, "messages": [{"role": "user", "content": "Say hello."}]}


def test_health_is_an_empty_200(generate_server: SimServer) -> None:
    response = httpx.get(generate_server.url + "/health")
    assert response.status_code == 200
    assert response.content == b""
    assert httpx.get(generate_server.url + "/ping").status_code == 200
    assert httpx.post(generate_server.url + "/ping").status_code == 200


def test_version_and_load(generate_server: SimServer) -> None:
    assert httpx.get(generate_server.url + "/version").json() == {"version": "0.32.0"}
    assert httpx.get(generate_server.url + "/load").json() == {"server_load": 0}


def test_models_match_the_recording(generate_server: SimServer) -> None:
    body = httpx.get(generate_server.base_url + "/models").json()
    assert shape_diff(body, recorded_json("vllm-models.json")) == []
    card = body["data"][0]
    assert (card["id"], card["owned_by"], card["max_model_len"]) == (RECORDED_NAME, "vllm", 2048)
    assert card["root"] == "/opt/engine/models/smollm2-135m-instruct"
    assert card["permission"][0]["id"].startswith("modelperm-")


def test_completion_matches_the_recording(generate_server: SimServer) -> None:
    request = {"model": RECORDED_NAME, "prompt": "The capital of France is", "max_tokens": 16}
    body = httpx.post(generate_server.base_url + "/completions", json=request).json()
    assert shape_diff(body, recorded_json("vllm-completions.json")) == []
    assert body["id"].startswith("cmpl-") and len(body["id"]) == len("cmpl-") + 16
    assert body["system_fingerprint"].startswith("vllm-0.32.0-")
    usage = body["usage"]
    assert usage["prompt_tokens"] == 5  # same count as the real tokenizer, by construction
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert (body["choices"][0]["finish_reason"], usage["completion_tokens"]) in {
        ("length", 16),
        ("stop", usage["completion_tokens"]),
    }


def test_chat_matches_the_recording_and_is_deterministic(generate_server: SimServer) -> None:
    url = generate_server.base_url + "/chat/completions"
    first = httpx.post(url, json={**CHAT, "max_tokens": 32}).json()
    second = httpx.post(url, json={**CHAT, "max_tokens": 32}).json()
    assert shape_diff(first, recorded_json("vllm-chat.json")) == []
    assert first["id"].startswith("chatcmpl-") and first["id"] != second["id"]
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert first["choices"][0]["message"]["content"]


def test_ignore_eos_generates_exactly_max_tokens(generate_server: SimServer) -> None:
    url = generate_server.base_url + "/chat/completions"
    body = httpx.post(url, json={**CHAT, "max_tokens": 200, "ignore_eos": True}).json()
    assert body["usage"]["completion_tokens"] == 200
    assert body["choices"][0]["finish_reason"] == "length"


def test_stop_string_ends_the_text_before_it(generate_server: SimServer) -> None:
    url = generate_server.base_url + "/completions"
    base = {"prompt": "Tell me", "max_tokens": 40, "ignore_eos": True}
    full = httpx.post(url, json=base).json()["choices"][0]["text"]
    stop = full.split()[3]
    body = httpx.post(url, json={**base, "stop": [stop]}).json()
    choice = body["choices"][0]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", stop)
    assert choice["text"] == full[: full.index(stop)]
    assert body["usage"]["completion_tokens"] < 40


def test_chat_stream_frames_like_the_recording(generate_server: SimServer) -> None:
    request = {**CHAT, "max_tokens": 8, "stream": True, "ignore_eos": True}
    request["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", generate_server.base_url + "/chat/completions", json=request) as r:
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        text = r.read().decode()
    payloads = sse_payloads(text)
    recorded = sse_payloads(recording("vllm-chat-stream.sse"))
    assert payloads[-1] == "[DONE]" == recorded[-1]
    chunks, expected = (
        [json.loads(p) for p in payloads[:-1]],
        [json.loads(p) for p in recorded[:-1]],
    )
    assert len(chunks) == 1 + 8 + 1  # role chunk, one per token, usage chunk
    assert shape_diff(chunks[0], expected[0]) == []  # role chunk
    assert shape_diff(chunks[1], expected[1]) == []  # token chunk
    assert shape_diff(chunks[-2], expected[-2]) == []  # last token carries finish_reason
    assert shape_diff(chunks[-1], expected[-1]) == []  # usage chunk
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 8
    assert len({c["id"] for c in chunks}) == 1


def test_completion_stream_frames_like_the_recording(generate_server: SimServer) -> None:
    request = {"prompt": "Once upon", "max_tokens": 4, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", generate_server.base_url + "/completions", json=request) as r:
        payloads = sse_payloads(r.read().decode())
    recorded = sse_payloads(recording("vllm-completions-stream.sse"))
    assert len(payloads) == len(recorded) == 5  # 4 token chunks (the last one finishes), [DONE]
    chunks, expected = (
        [json.loads(p) for p in payloads[:-1]],
        [json.loads(p) for p in recorded[:-1]],
    )
    assert shape_diff(chunks[0], expected[0]) == []
    assert shape_diff(chunks[-1], expected[-1]) == []  # finish chunk with system_fingerprint
    assert payloads[-1] == "[DONE]"


def test_streamed_text_equals_the_unstreamed_text(generate_server: SimServer) -> None:
    url = generate_server.base_url + "/chat/completions"
    whole = httpx.post(url, json={**CHAT, "max_tokens": 30}).json()
    with httpx.stream("POST", url, json={**CHAT, "max_tokens": 30, "stream": True}) as r:
        chunks = [json.loads(p) for p in sse_payloads(r.read().decode())[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == whole["choices"][0]["message"]["content"]


def test_tokenize_matches_the_recording(generate_server: SimServer) -> None:
    body = httpx.post(generate_server.url + "/tokenize", json={"prompt": "Hello world"}).json()
    assert shape_diff(body, recorded_json("vllm-tokenize.json")) == []
    assert (body["count"], body["max_model_len"], len(body["tokens"])) == (2, 2048, 2)
    back = httpx.post(generate_server.url + "/detokenize", json={"tokens": body["tokens"]})
    assert back.json() == {"prompt": "Hello world"}


@pytest.mark.parametrize(
    ("path", "request_body", "recorded", "status"),
    [
        ("/chat/completions", {**CHAT, "model": "nope"}, "vllm-bad_model.json", 404),
        ("/completions", {"prompt": "x", "max_tokens": 100000}, "vllm-too_long.json", 400),
    ],
)
def test_errors_are_vllms(
    generate_server: SimServer,
    path: str,
    request_body: dict[str, object],
    recorded: str,
    status: int,
) -> None:
    response = httpx.post(generate_server.base_url + path, json=request_body)
    assert response.status_code == status
    assert response.json() == recorded_json(recorded)


def test_bad_json_is_a_400_validation_error(generate_server: SimServer) -> None:
    response = httpx.post(
        generate_server.base_url + "/completions",
        content=b"{bad json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == recorded_json("vllm-bad_json.json")


def test_unknown_model_is_logged_like_vllm(generate_server: SimServer) -> None:
    httpx.post(generate_server.base_url + "/chat/completions", json={**CHAT, "model": "nope"})
    assert any(
        "[serving.py:274] Error with model error=ErrorInfo(message='The model `nope` does not exist"
        in line
        for line in generate_server.stdout_lines
    )


def test_pooling_routes_are_absent_on_a_generate_server(generate_server: SimServer) -> None:
    response = httpx.post(generate_server.base_url + "/embeddings", json={"input": "x"})
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert httpx.get(generate_server.url + "/nonexistent").json() == {"detail": "Not Found"}


def test_access_lines_go_to_stdout(generate_server: SimServer) -> None:
    httpx.get(generate_server.base_url + "/models")
    assert any('"GET /v1/models HTTP/1.1" 200 OK' in line for line in generate_server.stdout_lines)
    assert not any("GET /v1/models" in line for line in generate_server.stderr_lines)
