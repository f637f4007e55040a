"""Counting a run as it goes, and the summary a flow or a person reads at the end.

Latencies are kept as a compact array of doubles (8 bytes each): exact percentiles for a chunk
of a hundred thousand requests cost under a megabyte, no sketch needed.
"""

from __future__ import annotations

import json
import math
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from vec_inf_flows.workload.record import ResultRecord


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not values:
        return None
    rank = max(1, math.ceil(fraction * len(values)))
    return values[min(rank, len(values)) - 1]


class LatencySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None


class ChunkSummary(BaseModel):
    """What one run (a whole workload or one chunk of it) did."""

    model_config = ConfigDict(frozen=True)

    chunk: str | None = None
    total: int  # records read from the input (or the chunk)
    ok: int
    failed: int  # sent, and finally failed (the record carries the error)
    invalid: int  # input records that could not become requests
    skipped: int  # already in the output from an earlier run
    retries: int
    prompt_tokens: int
    completion_tokens: int
    elapsed_s: float
    requests_per_s: float
    completion_tokens_per_s: float
    latency_s: LatencySummary
    ttft_s: LatencySummary


@dataclass(frozen=True)
class Progress:
    """Handed to the progress callback after each record is written."""

    done: int  # records accounted for, skipped ones included
    total: int | None  # records in the chunk, when known
    ok: int
    failed: int
    invalid: int
    skipped: int


@dataclass
class RunStats:
    total: int | None = None
    ok: int = 0
    failed: int = 0
    invalid: int = 0
    skipped: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    ttfts: array[float] = field(default_factory=lambda: array("d"))

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.invalid + self.skipped

    def progress(self) -> Progress:
        return Progress(self.done, self.total, self.ok, self.failed, self.invalid, self.skipped)

    def add(self, record: ResultRecord) -> None:
        if record.attempts == 0:
            self.invalid += 1
            return
        self.retries += record.attempts - 1
        if not record.ok:
            self.failed += 1
            return
        self.ok += 1
        if record.latency_s is not None:
            self.latencies.append(record.latency_s)
        if record.ttft_s is not None:
            self.ttfts.append(record.ttft_s)
        usage = record.usage or {}
        self.prompt_tokens += _count(usage.get("prompt_tokens"))
        self.completion_tokens += _count(usage.get("completion_tokens"))

    def summary(self, chunk: str | None = None) -> ChunkSummary:
        elapsed = time.perf_counter() - self.started
        sent = self.ok + self.failed
        return ChunkSummary(
            chunk=chunk,
            total=self.done,
            ok=self.ok,
            failed=self.failed,
            invalid=self.invalid,
            skipped=self.skipped,
            retries=self.retries,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            elapsed_s=round(elapsed, 4),
            requests_per_s=round(sent / elapsed, 3) if elapsed > 0 else 0.0,
            completion_tokens_per_s=(
                round(self.completion_tokens / elapsed, 3) if elapsed > 0 else 0.0
            ),
            latency_s=_summarise(self.latencies),
            ttft_s=_summarise(self.ttfts),
        )


class ErrorGroup(BaseModel):
    """One reason requests failed, and how many failed for it."""

    model_config = ConfigDict(frozen=True)

    reason: str  # "HTTP 401: Unauthorized", "connection: ...", "invalid_input: ..."
    count: int


class OutputDigest(BaseModel):
    """What an output file holds: answered and failed requests, why they failed, latencies."""

    model_config = ConfigDict(frozen=True)

    ok: int = 0
    failed: int = 0  # sent, and finally failed
    invalid: int = 0  # input lines that never became requests
    errors: list[ErrorGroup] = []  # most frequent first
    latency_s: LatencySummary = LatencySummary()
    ttft_s: LatencySummary = LatencySummary()
    scored: int = 0  # records with a score (those whose request had a reference)
    score: float | None = None  # their mean score


def digest_output(path: str | Path) -> OutputDigest:
    """Count, group the failures of, and take percentiles over a whole output file.

    Chunk summaries cannot be merged into exact percentiles, and a resumed run's earlier
    answers are only in the file: reading it once at the end covers both, streaming, at 8 bytes
    a latency.
    """
    latencies: array[float] = array("d")
    ttfts: array[float] = array("d")
    reasons: Counter[str] = Counter()
    counts = {"ok": 0, "failed": 0, "invalid": 0}
    score_sum, scored = 0.0, 0
    with Path(path).open("rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn line is the store's business, not the summary's
            if not isinstance(record, dict):
                continue
            if isinstance(record.get("score"), int | float):
                score_sum, scored = score_sum + float(record["score"]), scored + 1
            if record.get("ok"):
                counts["ok"] += 1
                if isinstance(record.get("latency_s"), int | float):
                    latencies.append(float(record["latency_s"]))
                if isinstance(record.get("ttft_s"), int | float):
                    ttfts.append(float(record["ttft_s"]))
                continue
            counts["invalid" if not record.get("attempts") else "failed"] += 1
            reasons[_reason(record.get("error"))] += 1
    return OutputDigest(
        **counts,
        errors=[ErrorGroup(reason=text, count=n) for text, n in reasons.most_common()],
        latency_s=_summarise(latencies),
        ttft_s=_summarise(ttfts),
        scored=scored,
        score=round(score_sum / scored, 6) if scored else None,
    )


def _reason(error: object) -> str:
    """``HTTP 401: Unauthorized``, ``timeout: ...``: the status or kind, then the message."""
    if not isinstance(error, dict):
        return "unknown error"
    kind = f"HTTP {error['status']}" if error.get("status") else str(error.get("type") or "error")
    message = " ".join(str(error.get("message") or "").split())[:200]
    return f"{kind}: {message}" if message else kind


def _summarise(values: array[float]) -> LatencySummary:
    if not values:
        return LatencySummary()
    ordered = sorted(values)
    return LatencySummary(
        p50=percentile(ordered, 0.50),
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
        mean=sum(ordered) / len(ordered),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
