"""The runner against the simulator over real loopback HTTP: faults, retries, kinds, chunks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload import (
    Progress,
    RetryPolicy,
    RunOptions,
    iter_chunks,
    run_chunk,
)

from .conftest import read_records, sim_args, write_requests

QUICK_RETRY = RetryPolicy(max_attempts=15, base_delay_s=0.01, max_delay_s=0.05)


def test_injected_503s_and_drops_still_answer_every_id_exactly_once(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 200)
    output = tmp_path / "out.jsonl"
    flags = ("--sim-error-rate", "0.1", "--sim-drop-rate", "0.05", "--sim-seed", "3")
    retry = RetryPolicy(max_attempts=15, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=0)
    with SimServer(sim_args(*flags)) as server:
        summary = run_chunk(
            source, output, [server.base_url], options=RunOptions(concurrency=8, retry=retry)
        )

    records = read_records(output)
    assert sorted(r["id"] for r in records) == sorted(f"r{n}" for n in range(200))
    assert all(r["ok"] for r in records)
    reasons = Counter(note["reason"] for r in records for note in r["retries"])
    assert reasons["HTTP 503"] > 0 and reasons["dropped"] > 0
    assert summary.ok == 200 and summary.failed == 0
    assert summary.retries == sum(r["attempts"] - 1 for r in records) > 0
    chat = next(r for r in records if r["kind"] == "chat")
    assert chat["response"]["choices"][0]["message"]["role"] == "assistant"
    assert chat["usage"]["completion_tokens"] == 4


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 10)
    output = tmp_path / "out.jsonl"
    flags = ("--sim-error-rate", "0.3", "--sim-seed", "1")
    with SimServer(sim_args(*flags)) as server:
        run_chunk(source, output, [server.base_url], options=RunOptions(retry=QUICK_RETRY))

    notes = [note for r in read_records(output) for note in r["retries"]]
    assert notes and all(note["reason"] == "HTTP 503" for note in notes)
    for note in notes:
        # The server's own delay is obeyed (plus jitter), not our 0.01 s backoff.
        assert note["retry_after_s"] > 0
        assert note["wait_s"] >= note["retry_after_s"]


def test_client_errors_are_recorded_once_without_retry(
    tmp_path: Path, clean_server: SimServer
) -> None:
    source = tmp_path / "in.jsonl"
    rows = [
        {"id": "too-long", "prompt": "p", "max_tokens": 10_000_000},
        {"id": "no-model", "prompt": "p", "model": "nope"},
        {"id": "fine", "prompt": "p", "max_tokens": 2},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "out.jsonl"
    summary = run_chunk(source, output, [clean_server.base_url], options=RunOptions())

    by_id = {r["id"]: r for r in read_records(output)}
    assert by_id["fine"]["ok"] is True
    for bad in ("too-long", "no-model"):
        assert by_id[bad]["ok"] is False and by_id[bad]["attempts"] == 1
        assert by_id[bad]["retries"] == []
        assert by_id[bad]["error"]["type"] == "http_error"
    assert by_id["too-long"]["error"]["status"] == 400
    assert by_id["no-model"]["error"]["status"] == 404
    assert "nope" in by_id["no-model"]["error"]["message"]
    assert (summary.ok, summary.failed) == (1, 2)


def test_bad_lines_get_error_records_keyed_by_derived_id(
    tmp_path: Path, clean_server: SimServer
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "prompt": "p"}\n'
        "{broken\n"
        "\n"
        '{"id": "a", "prompt": "again"}\n'
        '{"messages": []}\n'
        '{"id": "b", "prompt": "p"}\n'
    )
    output = tmp_path / "out.jsonl"
    options = RunOptions(defaults={"max_tokens": 2})
    summary = run_chunk(source, output, [clean_server.base_url], options=options)

    records = {r["line"]: r for r in read_records(output)}
    assert sorted(records) == [1, 2, 4, 5, 6]  # one record per non-blank line
    assert records[1]["ok"] and records[6]["ok"]
    assert records[2]["error"]["message"].startswith("line 2: not valid JSON")
    assert records[4]["error"]["message"] == "line 4: id 'a' already used by an earlier line"
    assert records[5]["error"]["message"] == "line 5: 'messages' must be a non-empty list"
    assert all(records[n]["id"].startswith(f"line{n}-") for n in (2, 4, 5))
    assert all(records[n]["attempts"] == 0 for n in (2, 4, 5))
    assert (summary.ok, summary.invalid) == (2, 3)

    # A rerun finds everything done, bad lines included.
    again = run_chunk(source, output, [clean_server.base_url], options=options)
    assert (again.skipped, again.ok, again.invalid) == (5, 0, 0)
    assert len(read_records(output)) == 5


def test_csv_input(tmp_path: Path, clean_server: SimServer) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "id,prompt,messages,max_tokens\n"
        "c1,Paris is,,3\n"
        'c2,,"[{""role"": ""user"", ""content"": ""hi""}]",2\n'
        "c3,,,\n"
    )
    output = tmp_path / "out.jsonl"
    summary = run_chunk(source, output, [clean_server.base_url])

    by_line = {r["line"]: r for r in read_records(output)}
    assert [by_line[2]["id"], by_line[3]["id"]] == ["c1", "c2"]
    assert by_line[2]["usage"]["completion_tokens"] == 3
    assert by_line[2]["response"]["object"] == "text_completion"
    assert by_line[3]["response"]["object"] == "chat.completion"
    assert by_line[4]["id"].startswith("line4-")  # a bad row is keyed by its derived id
    assert by_line[4]["error"]["message"].startswith("line 4: needs one of")
    assert (summary.ok, summary.invalid) == (2, 1)


def test_embeddings_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "e1", "input": "hello"}\n{"id": "e2", "input": ["a", "b"]}\n')
    output = tmp_path / "out.jsonl"
    args = sim_args("--runner", "pooling", "--sim-embedding-dim", "16")
    with SimServer(args) as server:
        summary = run_chunk(
            source, output, [server.base_url], options=RunOptions(defaults={"max_tokens": 9})
        )

    by_id = {r["id"]: r for r in read_records(output)}
    assert summary.ok == 2
    assert by_id["e1"]["kind"] == "embedding"
    vectors = by_id["e2"]["response"]["data"]
    assert len(vectors) == 2 and len(vectors[0]["embedding"]) == 16
    assert by_id["e2"]["usage"]["prompt_tokens"] > 0


def test_streaming_measures_time_to_first_token(tmp_path: Path, clean_server: SimServer) -> None:
    source = write_requests(tmp_path / "in.jsonl", 6, max_tokens=5)
    output = tmp_path / "out.jsonl"
    options = RunOptions(defaults={"stream": True})
    summary = run_chunk(source, output, [clean_server.base_url], options=options)

    records = read_records(output)
    assert len(records) == 6 and all(r["ok"] for r in records)
    for record in records:
        assert 0 < record["ttft_s"] <= record["latency_s"]
        assert record["usage"]["completion_tokens"] == 5
        choice = record["response"]["choices"][0]
        text = choice["message"]["content"] if record["kind"] == "chat" else choice["text"]
        assert text and choice["finish_reason"] == "length"
    assert summary.ttft_s.p50 is not None and summary.completion_tokens == 30


def test_chunks_fill_one_output_and_report_progress(
    tmp_path: Path, clean_server: SimServer
) -> None:
    source = write_requests(tmp_path / "in.jsonl", 25, max_tokens=2)
    output = tmp_path / "out.jsonl"
    chunks = list(iter_chunks(source, 10))
    assert [c.count for c in chunks] == [10, 10, 5]

    seen: list[Progress] = []
    summaries = [
        run_chunk(source, output, [clean_server.base_url], chunk=chunk, on_progress=seen.append)
        for chunk in chunks
    ]
    assert [s.chunk for s in summaries] == ["chunk-00000", "chunk-00001", "chunk-00002"]
    assert [s.ok for s in summaries] == [10, 10, 5]
    assert sorted(r["id"] for r in read_records(output)) == sorted(f"r{n}" for n in range(25))
    assert [p.done for p in seen[:10]] == list(range(1, 11)) and seen[-1].total == 5

    # Re-running a finished chunk sends nothing.
    again = run_chunk(source, output, [clean_server.base_url], chunk=chunks[1])
    assert (again.skipped, again.ok) == (10, 0)
