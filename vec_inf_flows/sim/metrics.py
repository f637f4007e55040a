"""vLLM V1's Prometheus metrics: the same names, HELP texts, types, labels and bucket edges.

Values live in plain objects the engine updates; prometheus_client only renders them, so the
text format (``_total``, ``_created`` gauges, bucket order, content type) is the real one. Bulk
histogram updates (``observe(value, count)``) keep per-token cost off the hot path.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")
TTFT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
)
TTFT_BUCKETS += (7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
)
ITL_BUCKETS += (10.0, 20.0, 40.0, 80.0)
LATENCY_BUCKETS: tuple[float, ...] = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
)
LATENCY_BUCKETS += (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ITERATION_BUCKETS: tuple[float, ...] = (
    1.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    2048.0,
    4096.0,
)
ITERATION_BUCKETS += (8192.0, 16384.0)
PREEMPTION_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0)
N_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0)

COUNTERS: tuple[tuple[str, str], ...] = (
    ("prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."),
    ("prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."),
    (
        "external_prefix_cache_queries",
        "External prefix cache queries from KV connector cross-instance cache sharing, "
        "in terms of number of queried tokens.",
    ),
    (
        "external_prefix_cache_hits",
        "External prefix cache hits from KV connector cross-instance cache sharing, "
        "in terms of number of cached tokens.",
    ),
    ("mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items."),
    ("mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items."),
    ("num_preemptions", "Cumulative number of preemption from the engine."),
    ("prompt_tokens", "Number of prefill tokens processed."),
)
PROMPT_SOURCES = ("local_compute", "local_cache_hit", "external_kv_transfer")
CACHED_SOURCES = ("device", "host", "p2p", "disk", "external_unspecified")
CACHED_BY_SOURCE_HELP = (
    "Prefix-cache hit tokens by the cache tier that supplied them: device (local HBM), host "
    "(offloaded to DRAM), disk, p2p (transferred from another vLLM instance) or "
    "external_unspecified. Counted at admission; sums to vllm:prefix_cache_hits + "
    "vllm:external_prefix_cache_hits."
)
WAITING_BY_REASON_HELP = (
    "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling "
    "capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked "
    "status). Sum of all reasons equals vllm:num_requests_waiting."
)
SLEEP_STATE_HELP = (
    "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
    "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2."
)
MFU_HELP = "per GPU (for Model Flops Utilization calculations)."
MFU_COUNTERS = (
    ("estimated_flops_per_gpu", f"Estimated number of floating point operations {MFU_HELP}"),
    ("estimated_read_bytes_per_gpu", f"Estimated number of bytes read from memory {MFU_HELP}"),
    ("estimated_write_bytes_per_gpu", f"Estimated number of bytes written to memory {MFU_HELP}"),
)


def token_buckets(max_model_len: int) -> tuple[float, ...]:
    """vLLM's 1-2-5 series up to max_model_len."""
    edges: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_model_len:
                return tuple(edges)
            edges.append(float(value))
        exponent += 1


@dataclass
class Histogram:
    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket (not cumulative), +Inf last
    total: float = 0.0
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.edges) + 1)

    def observe(self, value: float, count: int = 1) -> None:
        if count <= 0:
            return
        self.counts[bisect_left(self.edges, value)] += count
        self.total += value * count

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for edge, n in zip((*self.edges, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if edge == float("inf") else repr(float(edge)), float(running)))
        return out


@dataclass
class Counter:
    value: float = 0.0
    created: float = field(default_factory=time.time)


@dataclass
class EngineGauges:
    running: int = 0
    waiting: int = 0
    kv_cache_usage: float = 0.0


class EngineMetrics:
    """Everything the engine counts; read by the collector and the periodic stats line."""

    def __init__(self, max_model_len: int) -> None:
        tokens = token_buckets(max_model_len)
        self.counters = {name: Counter() for name, _ in (*MFU_COUNTERS, *COUNTERS)}
        self.counters["generation_tokens"] = Counter()
        self.prompt_by_source = {s: Counter() for s in PROMPT_SOURCES}
        self.cached = Counter()
        self.cached_by_source = {s: Counter() for s in CACHED_SOURCES}
        self.success = {reason: Counter() for reason in FINISHED_REASONS}
        self.rejections = {r: Counter() for r in ("max_num_queued_reqs", "max_num_queued_tokens")}
        self.histograms: dict[str, Histogram] = {
            "request_prompt_tokens": Histogram(tokens),
            "request_generation_tokens": Histogram(tokens),
            "iteration_tokens_total": Histogram(ITERATION_BUCKETS),
            "request_max_num_generation_tokens": Histogram(tokens),
            "request_params_n": Histogram(N_BUCKETS),
            "request_params_max_tokens": Histogram(tokens),
            "time_to_first_token_seconds": Histogram(TTFT_BUCKETS),
            "inter_token_latency_seconds": Histogram(ITL_BUCKETS),
            "request_time_per_output_token_seconds": Histogram(ITL_BUCKETS),
            "e2e_request_latency_seconds": Histogram(LATENCY_BUCKETS),
            "request_queue_time_seconds": Histogram(LATENCY_BUCKETS),
            "request_inference_time_seconds": Histogram(LATENCY_BUCKETS),
            "request_prefill_time_seconds": Histogram(LATENCY_BUCKETS),
            "request_decode_time_seconds": Histogram(LATENCY_BUCKETS),
            "request_num_preemptions": Histogram(PREEMPTION_BUCKETS),
            "request_prefill_kv_computed_tokens": Histogram(tokens),
        }

    def add(self, name: str, amount: float) -> None:
        self.counters[name].value += amount

    def value(self, name: str) -> float:
        return self.counters[name].value


HISTOGRAM_HELP = {
    "request_prompt_tokens": "Number of prefill tokens processed.",
    "request_generation_tokens": "Number of generation tokens processed.",
    "iteration_tokens_total": "Histogram of number of tokens per engine_step.",
    "request_max_num_generation_tokens": (
        "Histogram of maximum number of requested generation tokens."
    ),
    "request_params_n": "Histogram of the n request parameter.",
    "request_params_max_tokens": "Histogram of the max_tokens request parameter.",
    "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
    "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
    "request_time_per_output_token_seconds": (
        "Histogram of time_per_output_token_seconds per request."
    ),
    "e2e_request_latency_seconds": "Histogram of e2e request latency in seconds.",
    "request_queue_time_seconds": "Histogram of time spent in WAITING phase for request.",
    "request_inference_time_seconds": "Histogram of time spent in RUNNING phase for request.",
    "request_prefill_time_seconds": "Histogram of time spent in PREFILL phase for request.",
    "request_decode_time_seconds": "Histogram of time spent in DECODE phase for request.",
    "request_num_preemptions": "Histogram of the number of times a request was preempted.",
    "request_prefill_kv_computed_tokens": (
        "Histogram of new KV tokens computed during prefill (excluding cached tokens)."
    ),
}


class VllmCollector(Collector):
    """Renders :class:`EngineMetrics` as vLLM's families, in vLLM's order."""

    def __init__(
        self,
        metrics: EngineMetrics,
        model_name: str,
        gauges: Callable[[], EngineGauges],
        cache_info: dict[str, str],
    ) -> None:
        self._m = metrics
        self._model = model_name
        self._gauges = gauges
        self._cache_info = cache_info

    def _labels(self, **extra: str) -> dict[str, str]:
        return {"engine": "0", "model_name": self._model, **extra}

    def _counter(self, name: str, doc: str, series: list[tuple[dict[str, str], Counter]]) -> Metric:
        family = Metric(f"vllm:{name}", doc, "counter")
        for labels, counter in series:
            family.add_sample(f"vllm:{name}_total", labels, counter.value)
        for labels, counter in series:
            family.add_sample(f"vllm:{name}_created", labels, counter.created)
        return family

    def _gauge(self, name: str, doc: str, series: list[tuple[dict[str, str], float]]) -> Metric:
        family = GaugeMetricFamily(f"vllm:{name}", doc)
        for labels, value in series:
            family.add_sample(f"vllm:{name}", labels, value)
        return family

    def _histogram(self, name: str, hist: Histogram) -> Metric:
        family = Metric(f"vllm:{name}", HISTOGRAM_HELP[name], "histogram")
        labels = self._labels()
        for le, value in hist.cumulative():
            family.add_sample(f"vllm:{name}_bucket", {**labels, "le": le}, value)
        family.add_sample(f"vllm:{name}_count", labels, float(hist.count))
        family.add_sample(f"vllm:{name}_sum", labels, hist.total)
        family.add_sample(f"vllm:{name}_created", labels, hist.created)
        return family

    def collect(self) -> Iterator[Metric]:
        m, labels = self._m, self._labels
        for name, doc in MFU_COUNTERS:
            yield self._counter(name, doc, [(labels(), m.counters[name])])
        state = self._gauges()
        yield self._gauge(
            "num_requests_running",
            "Number of requests in model execution batches.",
            [(labels(), float(state.running))],
        )
        yield self._gauge(
            "num_requests_waiting",
            "Number of requests waiting to be processed.",
            [(labels(), float(state.waiting))],
        )
        yield self._gauge(
            "num_requests_waiting_by_reason",
            WAITING_BY_REASON_HELP,
            [(labels(reason="capacity"), float(state.waiting)), (labels(reason="deferred"), 0.0)],
        )
        yield self._gauge(
            "engine_sleep_state",
            SLEEP_STATE_HELP,
            [
                (labels(sleep_state="awake"), 1.0),
                (labels(sleep_state="weights_offloaded"), 0.0),
                (labels(sleep_state="discard_all"), 0.0),
            ],
        )
        yield self._gauge(
            "kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            [(labels(), state.kv_cache_usage)],
        )
        for name, doc in COUNTERS:
            yield self._counter(name, doc, [(labels(), m.counters[name])])
            if name == "prompt_tokens":
                yield from self._prompt_source_families()
        yield self._counter(
            "generation_tokens",
            "Number of generation tokens processed.",
            [(labels(), m.counters["generation_tokens"])],
        )
        yield self._counter(
            "request_success",
            "Count of successfully processed requests.",
            [(labels(finished_reason=r), c) for r, c in m.success.items()],
        )
        yield self._counter(
            "admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            [({"model_name": self._model, "reason": r}, c) for r, c in m.rejections.items()],
        )
        for name, hist in m.histograms.items():
            yield self._histogram(name, hist)
        yield self._gauge(
            "cache_config_info",
            "Information of the LLMEngine CacheConfig",
            [({**self._cache_info, "engine": "0"}, 1.0)],
        )

    def _prompt_source_families(self) -> Iterator[Metric]:
        m, labels = self._m, self._labels
        yield self._counter(
            "prompt_tokens_by_source",
            "Number of prompt tokens by source.",
            [(labels(source=s), c) for s, c in m.prompt_by_source.items()],
        )
        yield self._counter(
            "prompt_tokens_cached",
            "Number of cached prompt tokens (local + external).",
            [(labels(), m.cached)],
        )
        yield self._counter(
            "prompt_tokens_cached_by_source",
            CACHED_BY_SOURCE_HELP,
            [(labels(source=s), c) for s, c in m.cached_by_source.items()],
        )


def render(collector: Collector) -> tuple[bytes, str]:
    """The exposition body and content type, including the process/GC/platform collectors."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        GC_COLLECTOR,
        PLATFORM_COLLECTOR,
        PROCESS_COLLECTOR,
        CollectorRegistry,
        generate_latest,
    )

    registry = CollectorRegistry(auto_describe=False)
    for standard in (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR):
        registry.register(standard)
    registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
