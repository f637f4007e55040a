"""Summary arithmetic: counts, tokens, percentiles."""

from __future__ import annotations

import json
from pathlib import Path

from vec_inf_flows.workload.record import RecordError, ResultRecord
from vec_inf_flows.workload.stats import RunStats, percentile


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([3.0], 0.99) == 3.0 and percentile([], 0.5) is None


def test_counts_and_tokens() -> None:
    stats = RunStats(total=5)
    usage = {"prompt_tokens": 4, "completion_tokens": 10}
    for n in range(3):
        stats.add(ResultRecord(id=f"{n}", line=n, ok=True, attempts=2, latency_s=n, usage=usage))
    failure = RecordError(type="http_error", message="bad", status=400)
    stats.add(ResultRecord(id="f", line=9, ok=False, attempts=1, error=failure))
    stats.add(ResultRecord(id="i", line=10, ok=False, attempts=0, error=failure))
    stats.skipped += 1

    summary = stats.summary("chunk-00000")
    assert (summary.ok, summary.failed, summary.invalid, summary.skipped) == (3, 1, 1, 1)
    assert summary.total == 6 and summary.retries == 3
    assert (summary.prompt_tokens, summary.completion_tokens) == (12, 30)
    assert summary.latency_s.p50 == 1.0 and summary.latency_s.p99 == 2.0
    assert summary.ttft_s.p50 is None
    assert stats.progress().done == 6 and stats.progress().total == 5


def test_the_digest_covers_every_record_of_the_file(tmp_path: Path) -> None:
    from vec_inf_flows.workload.stats import ErrorGroup, digest_output

    output = tmp_path / "out.jsonl"
    lines = [
        {"id": f"r{n}", "line": n, "ok": True, "latency_s": n / 100, "ttft_s": n / 1000}
        for n in range(1, 101)
    ]
    unauthorized = {"type": "http_error", "message": "Unauthorized", "status": 401}
    lines += [
        {"id": f"u{n}", "line": 101 + n, "ok": False, "attempts": 1, "error": unauthorized}
        for n in range(3)
    ]
    lines.append({"id": "t", "line": 110, "ok": False, "attempts": 4, "error": {"type": "timeout"}})
    invalid = {"type": "invalid_input", "message": "line 111: no messages"}
    lines.append({"id": "i", "line": 111, "ok": False, "attempts": 0, "error": invalid})
    output.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"id": "torn"')
    digest = digest_output(output)
    latency, ttft = digest.latency_s, digest.ttft_s
    assert (digest.ok, digest.failed, digest.invalid) == (100, 4, 1)
    assert digest.errors == [
        ErrorGroup(reason="HTTP 401: Unauthorized", count=3),
        ErrorGroup(reason="timeout", count=1),
        ErrorGroup(reason="invalid_input: line 111: no messages", count=1),
    ]
    assert (latency.p50, latency.p95, latency.p99) == (0.5, 0.95, 0.99)
    assert ttft.p50 == 0.05 and latency.mean is not None and abs(latency.mean - 0.505) < 1e-9
