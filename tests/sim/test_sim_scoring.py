"""What lm-eval needs from the simulator: echo, logprobs, batched prompts, known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lm_eval_kit import build_tokenizer
from sim_helpers import (
    RECORDED_NAME,
    RECORDING_ARGS,
    recorded_json,
    recording,
    shape_diff,
    sse_payloads,
)

from vec_inf_flows.sim.process import SimServer

QUESTION = "Question: What is the capital of France?\nAnswer:"


def _without_token_keys(body: dict[str, Any]) -> dict[str, Any]:
    """The body with the token-keyed dicts (top_logprobs, prompt_logprobs) taken out, since
    their keys are token strings and ids that differ between tokenizers."""
    copy = json.loads(json.dumps(body))
    for choice in copy["choices"]:
        if choice.get("logprobs"):
            choice["logprobs"]["top_logprobs"] = []
        if choice.get("prompt_logprobs"):
            choice["prompt_logprobs"] = []
    return copy


def recorded_json_frames(name: str) -> list[dict[str, Any]]:
    return [json.loads(p) for p in sse_payloads(recording(name)) if p != "[DONE]"]


def _check_top_lists(logprobs: dict[str, Any], k: int) -> None:
    """Each top dict starts with the token itself, then k alternatives (k - 1 if it is the top)."""
    for token, value, top in zip(
        logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True
    ):
        if value is None:
            assert top is None
            continue
        assert next(iter(top.items())) == (token, value)
        assert len(top) in (k, k + 1)
        assert (max(top.values()) == value) == (len(top) == max(k, 1))


@pytest.fixture(scope="module")
def answers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("answers") / "answers.jsonl"
    lines = [
        {"prompt": "What is the capital of France?", "answer": "Paris"},
        {"prompt": "What is the capital of Italy?", "answer": "Rome"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def answering_server(answers_file: Path) -> Iterator[SimServer]:
    args = [*RECORDING_ARGS, "--sim-tokens-per-second", "5000", "--sim-answers", str(answers_file)]
    with SimServer(args) as sim:
        yield sim


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def _complete(sim: SimServer, **body: Any) -> dict[str, Any]:
    reply = httpx.post(sim.base_url + "/completions", json={"model": RECORDED_NAME, **body})
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_echo_with_logprobs_has_vllms_shape(generate_server: SimServer) -> None:
    request = {"prompt": "The capital of France is Paris", "max_tokens": 1, "temperature": 0}
    body = _complete(generate_server, **request, logprobs=1, echo=True)
    recorded = recorded_json("vllm-completions-echo-logprobs.json")
    assert shape_diff(_without_token_keys(body), _without_token_keys(recorded)) == []
    choice = body["choices"][0]
    assert choice["text"].startswith("The capital of France is Paris")
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == choice["text"]
    assert logprobs["text_offset"][0] == 0 and logprobs["token_logprobs"][0] is None
    assert len(logprobs["tokens"]) == body["usage"]["total_tokens"]
    _check_top_lists(logprobs, 1)
    prompt_lp = choice["prompt_logprobs"]
    assert prompt_lp[0] is None and len(prompt_lp) == body["usage"]["prompt_tokens"]
    first = next(iter(prompt_lp[1].values()))
    assert list(first) == ["logprob", "rank", "decoded_token"]
    assert first["decoded_token"] == logprobs["tokens"][1]
    assert _complete(generate_server, **request, logprobs=1, echo=True)["choices"] == [
        choice
    ]  # deterministic


def test_echo_alone_and_logprobs_alone(generate_server: SimServer) -> None:
    echoed = _complete(generate_server, prompt="The capital of France is", max_tokens=3, echo=True)
    assert shape_diff(echoed, recorded_json("vllm-completions-echo.json")) == []
    assert echoed["choices"][0]["text"].startswith("The capital of France is ")
    plain = _complete(generate_server, prompt="The capital of France is", max_tokens=3, logprobs=2)
    logprobs = plain["choices"][0]["logprobs"]
    assert logprobs["text_offset"][0] == 0 and None not in logprobs["token_logprobs"]
    assert plain["choices"][0]["prompt_logprobs"] is None
    _check_top_lists(logprobs, 2)


def test_a_batch_of_prompts_answers_each_as_alone(generate_server: SimServer) -> None:
    prompts = ["The capital of France is", "Two plus two is"]
    batch = _complete(generate_server, prompt=prompts, max_tokens=3, logprobs=2)
    recorded = recorded_json("vllm-completions-logprobs-batch.json")
    assert shape_diff(_without_token_keys(batch), _without_token_keys(recorded)) == []
    assert [c["index"] for c in batch["choices"]] == [0, 1]
    singles = [_complete(generate_server, prompt=p, max_tokens=3, logprobs=2) for p in prompts]
    assert [c["text"] for c in batch["choices"]] == [s["choices"][0]["text"] for s in singles]
    for field in ("prompt_tokens", "completion_tokens"):
        assert batch["usage"][field] == sum(s["usage"][field] for s in singles)


def test_a_batch_of_token_id_prompts(generate_server: SimServer) -> None:
    body = _complete(
        generate_server,
        prompt=[[504, 3575, 282, 4649, 314, 7042], [504, 3575, 282]],
        max_tokens=1,
        logprobs=1,
        echo=True,
    )
    recorded = recorded_json("vllm-completions-echo-logprobs-ids-batch.json")
    assert shape_diff(_without_token_keys(body), _without_token_keys(recorded)) == []
    assert body["usage"]["prompt_tokens"] == 9
    assert [len(c["prompt_logprobs"]) for c in body["choices"]] == [6, 3]


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"prompt": []}, "You must pass at least one prompt"),
        ({"prompt": ["a", 5]}, "validation error"),
        ({"prompt": "x", "logprobs": -1}, "logprobs must be a non-negative integer"),
        ({"prompt": ["a", "b"], "stream": True}, "streams one prompt per request"),
        ({"prompt": "a", "echo": True, "stream": True}, "streams one prompt per request"),
    ],
)
def test_bad_scoring_requests_are_400s(
    generate_server: SimServer, request_body: dict[str, Any], message: str
) -> None:
    reply = httpx.post(
        generate_server.base_url + "/completions", json={"max_tokens": 1, **request_body}
    )
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_too_many_logprobs_is_vllms_error(generate_server: SimServer) -> None:
    reply = httpx.post(
        generate_server.base_url + "/completions",
        json={"model": RECORDED_NAME, "prompt": "Hi", "max_tokens": 1, "logprobs": 25},
    )
    assert reply.status_code == 400
    assert reply.json() == recorded_json("vllm-logprobs_too_many.json")


def test_streamed_logprobs_match_the_unstreamed(generate_server: SimServer) -> None:
    request = {"prompt": "Stream me", "max_tokens": 8, "logprobs": 1}
    whole = _complete(generate_server, **request)["choices"][0]["logprobs"]
    reply = httpx.post(
        generate_server.base_url + "/completions", json={**request, "stream": True}
    ).text
    frames = [json.loads(p) for p in sse_payloads(reply) if p != "[DONE]"]
    recorded = recorded_json_frames("vllm-completions-logprobs-stream.sse")
    assert shape_diff(_without_token_keys(frames[0]), _without_token_keys(recorded[0])) == []
    assert shape_diff(_without_token_keys(frames[-1]), _without_token_keys(recorded[-1])) == []
    parts = [f["choices"][0]["logprobs"] for f in frames if f["choices"]]
    for key in ("tokens", "token_logprobs", "text_offset", "top_logprobs"):
        assert [v for part in parts for v in part[key]] == whole[key]


def test_answer_mode_generates_the_answer(answering_server: SimServer) -> None:
    body = _complete(answering_server, prompt=QUESTION, max_tokens=16, stop=["\n"])
    assert body["choices"][0]["text"] == "Paris"
    assert body["choices"][0]["finish_reason"] == "stop"
    few_shot = "What is the capital of France?\nParis\n\nWhat is the capital of Italy?\n"
    assert _complete(answering_server, prompt=few_shot, max_tokens=4)["choices"][0]["text"] == (
        "Rome"
    )
    cut = _complete(answering_server, prompt=QUESTION, max_tokens=1, stop=["\n"])
    assert cut["choices"][0]["finish_reason"] == "length"
    chat = httpx.post(
        answering_server.base_url + "/chat/completions",
        json={"messages": [{"role": "user", "content": "What is the capital of Italy?"}]},
    ).json()
    assert chat["choices"][0]["message"]["content"] == "Rome"
    other = _complete(answering_server, prompt="Tell me a story", max_tokens=5)
    assert other["choices"][0]["text"] not in ("Paris", "Rome")  # unmatched: the usual words


def _continuation_logprob(body: dict[str, Any], index: int, context: str) -> float:
    """What lm-eval sums: the logprobs of the tokens after the context, minus the generated one."""
    logprobs = body["choices"][index]["logprobs"]
    start = next(i for i, o in enumerate(logprobs["text_offset"]) if o >= len(context))
    values = logprobs["token_logprobs"][start:-1]
    return float(math.fsum(values))


def test_answer_mode_scores_the_answer_highest(answering_server: SimServer) -> None:
    choices = ["Berlin", "Paris", "Not Paris", "Rome"]
    body = _complete(
        answering_server,
        prompt=[f"{QUESTION} {c}" for c in choices],
        max_tokens=1,
        logprobs=1,
        echo=True,
    )
    scores = [_continuation_logprob(body, i, QUESTION) for i in range(len(choices))]
    assert scores == [-30.0, 0.0, -30.0, -30.0]
    paris = body["choices"][1]["logprobs"]
    start = paris["text_offset"].index(len(QUESTION))
    assert all(max(top.values()) == 0.0 for top in paris["top_logprobs"][start:-1])  # greedy


def test_model_tokenizer_reads_token_id_prompts(tokenizer_dir: Path, answers_file: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    args = [
        *RECORDING_ARGS,
        "--sim-tokens-per-second",
        "5000",
        "--sim-tokenizer",
        str(tokenizer_dir),
        "--sim-answers",
        str(answers_file),
    ]
    with SimServer(args) as sim:
        ids = tokenizer.encode(QUESTION + " Paris").ids
        body = _complete(sim, prompt=[ids], max_tokens=1, logprobs=1, echo=True)
        choice = body["choices"][0]
        assert choice["text"].startswith(QUESTION + " Paris")
        assert body["usage"]["prompt_tokens"] == len(ids)
        assert [int(next(iter(p))) for p in choice["prompt_logprobs"][1:]] == ids[1:]
        assert _continuation_logprob(body, 0, QUESTION) == 0.0
        answer = _complete(sim, prompt=tokenizer.encode(QUESTION).ids, max_tokens=8)
        assert answer["choices"][0]["text"] == "Paris"
        counted = httpx.post(sim.url + "/tokenize", json={"prompt": QUESTION}).json()
        assert counted["tokens"] == tokenizer.encode(QUESTION).ids
        out_of_range = httpx.post(
            sim.base_url + "/completions", json={"prompt": [10**6], "max_tokens": 1}
        )
        assert out_of_range.status_code == 400


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vec_inf_flows.sim", "serve", "/m/tiny", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"prompt": "q", "answer": "a"}\nnot json\n', "line 2: invalid JSON"),
        ('{"prompt": "q"}\n', 'line 1: expected {"prompt": "<text>", "answer": "<text>"}'),
        ("\n", "has no answers"),
    ],
)
def test_a_bad_answer_file_fails_in_one_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(content)
    result = _serve("--sim-answers", str(path))
    assert result.returncode == 2
    last = result.stderr.splitlines()[-1]
    assert last.startswith("vllm serve: error: argument --sim-answers: ") and expected in last
    assert "Traceback" not in result.stderr


def test_a_missing_tokenizer_fails_in_one_line(tmp_path: Path) -> None:
    result = _serve("--sim-tokenizer", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"vllm serve: error: argument --sim-tokenizer: no tokenizer.json at "
        f"{tmp_path / 'tokenizer.json'}"
    )
