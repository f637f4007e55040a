"""Counting a run as it goes, and the summary a flow or a person reads at the end.

Latencies are kept as a compact array of doubles (8 bytes each): exact percentiles for a chunk
of a hundred thousand requests cost under a megabyte, no sketch needed.
"""

from __future__ import annotations

import json
import math
import time
from array import array
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


def output_latencies(path: str | Path) -> tuple[LatencySummary, LatencySummary]:
    """Latency and time-to-first-token percentiles over every answered record of an output file.

    Chunk summaries cannot be merged into exact percentiles, and a resumed run's earlier
    answers are only in the file: reading it once at the end covers both, streaming, at 8 bytes
    a value.
    """
    latencies: array[float] = array("d")
    ttfts: array[float] = array("d")
    with Path(path).open("rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn line is the store's business, not the summary's
            if isinstance(record, dict) and record.get("ok"):
                if isinstance(record.get("latency_s"), int | float):
                    latencies.append(float(record["latency_s"]))
                if isinstance(record.get("ttft_s"), int | float):
                    ttfts.append(float(record["ttft_s"]))
    return _summarise(latencies), _summarise(ttfts)


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
