"""References scored as results are written, the OpenAI Batch format in and out, and
``--retry-failed``: over real HTTP against the simulator, and through the workload's own CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload import RunOptions, read_items, run_chunk
from vec_inf_flows.workload.stats import digest_output

from .conftest import read_records, sim_args, write_requests

ANSWERS = [
    {"prompt": "capital of France", "answer": "Paris"},
    {"prompt": "capital of Italy", "answer": "Rome"},
    {"prompt": "2 + 2", "answer": "4"},
    {"prompt": "colour of the sky", "answer": "green"},  # the simulated model is wrong here
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def answer_book(tmp_path: Path) -> str:
    return str(write_jsonl(tmp_path / "answers.jsonl", ANSWERS))


def questions(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": "fr", "prompt": "What is the capital of France?", "expected": "Paris"},
            {
                "id": "it",
                "messages": [{"role": "user", "content": "The capital of Italy?"}],
                "reference": "Rome",
            },
            {"id": "sum", "prompt": "What is 2 + 2?", "expected": "4"},
            {"id": "sky", "prompt": "What is the colour of the sky?", "expected": "blue"},
            {"id": "free", "prompt": "Say anything."},  # no reference: not scored
        ],
    )


def test_references_are_scored_per_record_and_never_sent(tmp_path: Path) -> None:
    source, output = questions(tmp_path), tmp_path / "out.jsonl"
    bodies = {item.id: item.request.body for item in read_items(source, defaults={"model": "m"})}
    assert all("expected" not in b and "reference" not in b for b in bodies.values() if b)

    with SimServer(sim_args("--sim-answers", answer_book(tmp_path))) as server:
        run_chunk(source, output, [server.base_url], options=RunOptions(model="m"))

    scores = {record["id"]: record.get("score") for record in read_records(output)}
    assert scores == {"fr": 1.0, "it": 1.0, "sum": 1.0, "sky": 0.0, "free": None}
    digest = digest_output(output)
    assert (digest.scored, digest.score) == (4, 0.75)


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "vec_inf_flows.workload", "run", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def batch_input(tmp_path: Path) -> Path:
    def line(custom_id: str, url: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"custom_id": custom_id, "method": "POST", "url": url, "body": body, **extra}

    chat = {"messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 5}
    return write_jsonl(
        tmp_path / "batch.jsonl",
        [
            line("req-chat", "/v1/chat/completions", chat, expected="4"),
            line("req-text", "/v1/completions", {"prompt": "capital of France", "max_tokens": 5}),
            line("req-embed", "/v1/embeddings", {"input": "a sentence"}),  # a generate server
            line("req-bad", "/v1/moderations", {"input": "x"}),  # not an endpoint we send
        ],
    )


def test_a_batch_file_in_and_batch_output_out_through_the_cli(tmp_path: Path) -> None:
    source = batch_input(tmp_path)
    output, batch = tmp_path / "out.jsonl", tmp_path / "out.batch.jsonl"
    with SimServer(sim_args("--sim-answers", answer_book(tmp_path))) as server:
        done = run_cli(
            "--base-url", server.base_url, "--input", str(source), "--output", str(output),
            "--batch-output", str(batch), "--max-attempts", "1",
        )  # fmt: skip

    assert done.returncode == 0, done.stderr
    records = {record["id"]: record for record in read_records(output)}
    assert records["req-chat"]["ok"] and records["req-chat"]["score"] == 1.0
    lines = {line["custom_id"]: line for line in read_records(batch)}
    # A line that is no request is keyed by its line number and content, in every format.
    (invalid_id,) = [key for key in lines if key.startswith("line4-")]
    assert set(lines) == {"req-chat", "req-text", "req-embed", invalid_id}
    assert all(set(line) == {"id", "custom_id", "response", "error"} for line in lines.values())
    answered = lines["req-chat"]
    assert answered["error"] is None and answered["response"]["status_code"] == 200
    assert answered["response"]["body"]["choices"][0]["message"]["content"] == "4"
    assert answered["response"]["request_id"] == answered["response"]["body"]["id"]
    assert lines["req-text"]["response"]["body"]["choices"][0]["text"] == "Paris"
    refused = lines["req-embed"]
    assert refused["error"] is None and refused["response"]["status_code"] >= 400
    assert refused["response"]["body"]["error"]["message"]
    invalid = lines[invalid_id]
    assert invalid["response"] is None and invalid["error"]["code"] == "invalid_input"
    assert invalid["error"]["message"].startswith("line 4: url '/v1/moderations'")
    assert oct(batch.stat().st_mode & 0o777) == "0o644"


def successes(server: SimServer) -> int:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total")
    )


def test_retry_failed_resends_only_the_failed_ids(tmp_path: Path) -> None:
    source, output = write_requests(tmp_path / "in.jsonl", 40), tmp_path / "out.jsonl"
    flaky = ("--sim-error-rate", "0.4", "--sim-seed", "7")
    with SimServer(sim_args(*flaky)) as server:
        first = run_cli(
            "--base-url", server.base_url, "--input", str(source), "--output", str(output),
            "--max-attempts", "1",
        )  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = output.read_bytes().splitlines(keepends=True)
    good = [line for line in before if json.loads(line)["ok"]]
    failed_ids = {json.loads(line)["id"] for line in before if not json.loads(line)["ok"]}
    assert 0 < len(failed_ids) < 40

    with SimServer(sim_args()) as server:
        plain = run_cli(
            "--base-url", server.base_url, "--input", str(source), "--output", str(output)
        )
        assert plain.returncode == 0 and successes(server) == 0  # failed records count as done
        again = run_cli(
            "--base-url", server.base_url, "--input", str(source), "--output", str(output),
            "--retry-failed",
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert successes(server) == len(failed_ids)  # only the failed ids were sent

    assert f"retrying {len(failed_ids)} failed requests" in again.stderr
    after = output.read_bytes().splitlines(keepends=True)
    assert after[: len(good)] == good  # the good records, byte for byte, in their order
    records = read_records(output)
    assert len(records) == 40 and all(record["ok"] for record in records)
    assert {record["id"] for record in records[len(good) :]} == failed_ids


def test_embeddings_are_scored_by_cosine_against_reference_vectors(tmp_path: Path) -> None:
    args = [
        "embedder",
        "--served-model-name",
        "e",
        "--runner",
        "pooling",
        "--sim-startup-delay",
        "0",
    ]
    with SimServer(args) as server:
        known = httpx.post(
            server.base_url + "/embeddings",
            json={"model": "e", "input": ["the cat sat on the mat", "stock prices fell"]},
            timeout=30,
        ).json()["data"]
        source = write_jsonl(
            tmp_path / "texts.jsonl",
            [  # the reference vector of a known embedding: itself, and another text's
                {
                    "id": "same",
                    "input": "the cat sat on the mat",
                    "reference": known[0]["embedding"],
                },
                {
                    "id": "other",
                    "input": "the cat sat on the mat",
                    "expected": known[1]["embedding"],
                },
            ],
        )
        output = tmp_path / "out.jsonl"
        run_chunk(source, output, [server.base_url], options=RunOptions(model="e"))

    scores = {record["id"]: record["score"] for record in read_records(output)}
    assert scores["same"] == 1.0
    assert -1.0 <= scores["other"] < 0.5
