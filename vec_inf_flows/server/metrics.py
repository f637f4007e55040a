"""Turn a server's ``/metrics`` text into the numbers a user watches.

Three mistakes of the anchor shape this module:

* labelled series were overwritten line by line (``request_success_total`` showed the last
  ``finished_reason``, usually 0): here every series of a name is summed, and the split by
  reason is kept;
* only vLLM V0 names were read (``gpu_cache_usage_perc`` reads 0 % on V1): here each quantity
  lists its names across vLLM V1, V0 and SGLang, first present wins;
* throughput repeated the last non-zero rate when idle: here a rate is the delta between two
  snapshots over their time gap, so an idle server reads 0, and a first scrape reads "n/a".
"""

from __future__ import annotations

import time
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from vec_inf_flows.errors import ServerError

# Label by which a counter is also split (the total is still the sum over all series).
_SPLIT_LABELS = {
    "vllm:request_success_total": "finished_reason",
}
# Ratios (0..1): several engines (data parallel) are averaged, not added.
_RATIO_SUFFIXES = ("_perc", ":token_usage", "_hit_rate")

_PROMPT_TOKENS = ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total")
_GENERATION_TOKENS = ("vllm:generation_tokens_total", "sglang:generation_tokens_total")
_RUNNING = ("vllm:num_requests_running", "sglang:num_running_reqs")
_WAITING = ("vllm:num_requests_waiting", "sglang:num_queue_reqs")
_SWAPPED = ("vllm:num_requests_swapped",)  # V0 only
_KV_CACHE = ("vllm:kv_cache_usage_perc", "sglang:token_usage")
_GPU_CACHE_V0 = ("vllm:gpu_cache_usage_perc",)
_CPU_CACHE_V0 = ("vllm:cpu_cache_usage_perc",)
_SUCCESS = ("vllm:request_success_total", "sglang:num_requests_total")
_PREEMPTIONS = ("vllm:num_preemptions_total",)
# Histograms, by base name (``_sum`` / ``_count`` appended).
_E2E = ("vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds")
_TTFT = ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds")
_ITL = (
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",  # V0 / hidden in V1
    "sglang:inter_token_latency_seconds",
    "sglang:time_per_output_token_seconds",
)
_QUEUE = ("vllm:request_queue_time_seconds", "sglang:queue_time_seconds")
# Prefix cache: counters (hits, queries) preferred, else an engine-computed rate.
_PREFIX_COUNTERS = (
    ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"),
    ("vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_queries_total"),
)
_PREFIX_RATE = ("vllm:gpu_prefix_cache_hit_rate", "sglang:cache_hit_rate")


class MetricsSnapshot(BaseModel):
    """One scrape: each sample name's value summed over its label sets (buckets dropped)."""

    model_config = ConfigDict(frozen=True)

    timestamp: float  # seconds since the epoch, when scraped
    values: dict[str, float]
    splits: dict[str, dict[str, float]] = {}  # e.g. request_success_total by finished_reason

    def first(self, names: tuple[str, ...]) -> float | None:
        for name in names:
            if name in self.values:
                return self.values[name]
        return None

    def present(self, names: tuple[str, ...]) -> str | None:
        return next((name for name in names if name in self.values), None)


class ServerMetrics(BaseModel):
    """What the metrics table shows; None means the server does not export it."""

    model_config = ConfigDict(frozen=True)

    engine: str  # "vllm", "sglang" or "unknown" (from the metric prefix)
    window_seconds: float | None = None  # time between the two snapshots, when there are two
    prompt_throughput: float | None = None  # tokens/s over the window
    generation_throughput: float | None = None
    requests_running: float | None = None
    requests_waiting: float | None = None
    requests_swapped: float | None = None
    kv_cache_usage: float | None = None  # 0..1
    kv_cache_label: str = "KV Cache Usage"  # "GPU Cache Usage" for V0's gpu_cache_usage_perc
    cpu_cache_usage: float | None = None
    avg_request_latency: float | None = None  # seconds
    avg_time_to_first_token: float | None = None
    avg_inter_token_latency: float | None = None
    avg_queue_time: float | None = None
    latency_windowed: bool = False  # averages over the window (else since server start)
    prefix_cache_hit_rate: float | None = None  # 0..1
    preemptions: float | None = None
    total_prompt_tokens: float | None = None
    total_generation_tokens: float | None = None
    successful_requests: float | None = None
    successful_by_reason: dict[str, float] = {}


def parse_metrics(text: str, timestamp: float | None = None) -> MetricsSnapshot:
    """Parse Prometheus text with Prometheus' own parser; raise ServerError if it is not."""
    series: dict[str, list[float]] = defaultdict(list)
    splits: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith(("_bucket", "_created")):
                    continue
                series[sample.name].append(float(sample.value))
                split_label = _SPLIT_LABELS.get(sample.name)
                if split_label and split_label in sample.labels:
                    splits[sample.name][sample.labels[split_label]] += float(sample.value)
    except ValueError as error:
        raise ServerError(f"The server's /metrics is not Prometheus text: {error}") from None
    values = {name: _combine(name, found) for name, found in series.items()}
    return MetricsSnapshot(
        timestamp=time.time() if timestamp is None else timestamp,
        values=values,
        splits={name: dict(split) for name, split in splits.items()},
    )


def merge_snapshots(snapshots: list[MetricsSnapshot]) -> MetricsSnapshot:
    """Several servers of one model (a replica group) read as one: counters, gauges and
    histogram sums add up, ratios average, as for the label sets of one server."""
    series: dict[str, list[float]] = defaultdict(list)
    splits: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for snapshot in snapshots:
        for name, value in snapshot.values.items():
            series[name].append(value)
        for name, split in snapshot.splits.items():
            for label, value in split.items():
                splits[name][label] += value
    return MetricsSnapshot(
        timestamp=max((snapshot.timestamp for snapshot in snapshots), default=time.time()),
        values={name: _combine(name, found) for name, found in series.items()},
        splits={name: dict(split) for name, split in splits.items()},
    )


def _combine(name: str, found: list[float]) -> float:
    total = sum(found)
    return total / len(found) if name.endswith(_RATIO_SUFFIXES) else total


def _engine(snapshot: MetricsSnapshot) -> str:
    prefixes = {name.split(":", 1)[0] for name in snapshot.values if ":" in name}
    return next((p for p in ("vllm", "sglang") if p in prefixes), "unknown")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _delta(current: MetricsSnapshot, previous: MetricsSnapshot, name: str) -> float | None:
    now, before = current.values.get(name), previous.values.get(name)
    return None if now is None or before is None else now - before


def _counters_reset(current: MetricsSnapshot, previous: MetricsSnapshot) -> bool:
    """A counter that went down means the server restarted: the old snapshot is useless."""
    names = (*_PROMPT_TOKENS, *_GENERATION_TOKENS, *_SUCCESS)
    return any((_delta(current, previous, name) or 0.0) < 0 for name in names)


def _mean(
    current: MetricsSnapshot, previous: MetricsSnapshot | None, bases: tuple[str, ...]
) -> tuple[float | None, bool]:
    """Mean of a histogram over the window if it saw observations, else since start."""
    base = current.present(tuple(f"{b}_count" for b in bases))
    if base is None:
        return None, False
    base = base.removesuffix("_count")
    if previous is not None:
        windowed = _ratio(
            _delta(current, previous, f"{base}_sum"), _delta(current, previous, f"{base}_count")
        )
        if windowed is not None:
            return windowed, True
    return _ratio(current.values.get(f"{base}_sum"), current.values.get(f"{base}_count")), False


def _rate(
    current: MetricsSnapshot, previous: MetricsSnapshot | None, names: tuple[str, ...]
) -> float | None:
    name = current.present(names)
    if previous is None or name is None:
        return None
    elapsed = current.timestamp - previous.timestamp
    change = _delta(current, previous, name)
    if elapsed <= 0 or change is None:
        return None
    return max(change, 0.0) / elapsed


def _prefix_hit_rate(current: MetricsSnapshot, previous: MetricsSnapshot | None) -> float | None:
    for hits, queries in _PREFIX_COUNTERS:
        if hits in current.values and queries in current.values:
            if previous is not None:
                windowed = _ratio(
                    _delta(current, previous, hits), _delta(current, previous, queries)
                )
                if windowed is not None:
                    return windowed
            return _ratio(current.values[hits], current.values[queries])
    return current.first(_PREFIX_RATE)


def derive(current: MetricsSnapshot, previous: MetricsSnapshot | None = None) -> ServerMetrics:
    """Numbers for display from the latest snapshot and, for rates, the one before it."""
    if previous is not None and (
        current.timestamp <= previous.timestamp or _counters_reset(current, previous)
    ):
        previous = None
    latency, windowed = _mean(current, previous, _E2E)
    ttft, _ = _mean(current, previous, _TTFT)
    itl, _ = _mean(current, previous, _ITL)
    queue, _ = _mean(current, previous, _QUEUE)
    v0_gpu_cache = current.first(_GPU_CACHE_V0)
    kv_cache = current.first(_KV_CACHE)
    success_name = current.present(_SUCCESS)
    return ServerMetrics(
        engine=_engine(current),
        window_seconds=current.timestamp - previous.timestamp if previous else None,
        prompt_throughput=_rate(current, previous, _PROMPT_TOKENS),
        generation_throughput=_rate(current, previous, _GENERATION_TOKENS),
        requests_running=current.first(_RUNNING),
        requests_waiting=current.first(_WAITING),
        requests_swapped=current.first(_SWAPPED),
        kv_cache_usage=kv_cache if kv_cache is not None else v0_gpu_cache,
        kv_cache_label="KV Cache Usage"
        if kv_cache is not None or v0_gpu_cache is None
        else "GPU Cache Usage",
        cpu_cache_usage=current.first(_CPU_CACHE_V0),
        avg_request_latency=latency,
        avg_time_to_first_token=ttft,
        avg_inter_token_latency=itl,
        avg_queue_time=queue,
        latency_windowed=windowed,
        prefix_cache_hit_rate=_prefix_hit_rate(current, previous),
        preemptions=current.first(_PREEMPTIONS),
        total_prompt_tokens=current.first(_PROMPT_TOKENS),
        total_generation_tokens=current.first(_GENERATION_TOKENS),
        successful_requests=current.values.get(success_name) if success_name else None,
        successful_by_reason=current.splits.get(success_name or "", {}),
    )


def _throughput(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} tokens/s"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def metrics_rows(m: ServerMetrics) -> list[tuple[str, str]]:
    """The metrics table, in the user guide's order and units, plus the V1 additions.

    A row appears only if the server exports its metric; a rate the first scrape cannot know
    yet reads "n/a".
    """
    rows: list[tuple[str, str]] = []
    if m.total_prompt_tokens is not None:
        rows.append(("Prompt Throughput", _throughput(m.prompt_throughput)))
    if m.total_generation_tokens is not None:
        rows.append(("Generation Throughput", _throughput(m.generation_throughput)))
    counts = (
        ("Requests Running", m.requests_running),
        ("Requests Waiting", m.requests_waiting),
        ("Requests Swapped", m.requests_swapped),
    )
    rows += [(label, f"{value:.0f} reqs") for label, value in counts if value is not None]
    ratios = (
        (m.kv_cache_label, m.kv_cache_usage),
        ("CPU Cache Usage", m.cpu_cache_usage),
        ("Prefix Cache Hit Rate", m.prefix_cache_hit_rate),
    )
    rows += [(label, f"{value * 100:.1f}%") for label, value in ratios if value is not None]
    latencies = (
        ("Avg Request Latency", m.avg_request_latency),
        ("Time To First Token", m.avg_time_to_first_token),
        ("Inter-Token Latency", m.avg_inter_token_latency),
    )
    rows += [(label, _seconds(value)) for label, value in latencies if value is not None]
    tokens = (
        ("Total Prompt Tokens", m.total_prompt_tokens),
        ("Total Generation Tokens", m.total_generation_tokens),
    )
    rows += [(label, f"{value:.0f} tokens") for label, value in tokens if value is not None]
    if m.successful_requests is not None:
        rows.append(("Successful Requests", f"{m.successful_requests:.0f} reqs"))
    if m.preemptions is not None:
        rows.append(("Preemptions", f"{m.preemptions:.0f}"))
    return rows
