"""/metrics speaks vLLM V1's names, types, labels and buckets, and counts what was served."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sim_helpers import RECORDED_NAME, RECORDING_ARGS, recording

from vec_inf_flows.sim.process import SimServer

REMOVED_NAMES = (
    "vllm:gpu_cache_usage_perc",
    "vllm:cpu_cache_usage_perc",
    "vllm:num_requests_swapped",
    "vllm:gpu_prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits",
    "vllm:time_per_output_token_seconds",
)


def vllm_families(text: str) -> dict[str, tuple[str, str, list[Sample]]]:
    return {
        f.name: (f.type, f.documentation, f.samples)
        for f in text_string_to_metric_families(text)
        if f.name.startswith("vllm:")
    }


def value(samples: dict[str, tuple[str, str, list[Sample]]], name: str, **labels: str) -> float:
    family = name.removesuffix("_total").removesuffix("_sum").removesuffix("_count")
    for sample in samples[family][2]:
        if sample.name == name and labels.items() <= sample.labels.items():
            return float(sample.value)
    raise KeyError(name)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SimServer, list[dict[str, int]], list[str]]]:
    """A fresh server after a known set of requests: their usages and finish reasons."""
    with SimServer([*RECORDING_ARGS, "--sim-tokens-per-second", "2000"]) as sim:
        usages, reasons = [], []
        requests = [
            ("/completions", {"prompt": "The capital of France is", "max_tokens": 10}),
            ("/completions", {"prompt": "One two three", "max_tokens": 300}),
            ("/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
            (
                "/chat/completions",
                {"messages": [{"role": "user", "content": "Count"}], "max_tokens": 7},
            ),
            ("/completions", {"prompt": "Go on", "max_tokens": 25, "ignore_eos": True}),
        ]
        for path, body in requests:
            answer = httpx.post(sim.base_url + path, json=body).json()
            usages.append(answer["usage"])
            reasons.append(answer["choices"][0]["finish_reason"])
        yield sim, usages, reasons


def test_names_types_labels_and_help_match_the_recording(
    served: tuple[SimServer, list[dict[str, int]], list[str]],
) -> None:
    sim = served[0]
    ours = vllm_families(httpx.get(sim.url + "/metrics").text)
    recorded = vllm_families(recording("vllm-0.32-cpu-metrics-full.txt"))
    assert sorted(ours) == sorted(recorded)
    for name, (kind, doc, samples) in ours.items():
        assert (kind, doc) == recorded[name][:2], name
        label_sets = {(s.name, frozenset(s.labels)) for s in samples}
        recorded_sets = {(s.name, frozenset(s.labels)) for s in recorded[name][2]}
        if name == "vllm:cache_config_info":  # info labels: ours are a subset of the engine's
            (ours_info,) = samples
            assert set(ours_info.labels) <= set(recorded[name][2][0].labels)
            continue
        assert label_sets == recorded_sets, name
        assert all(s.labels.get("model_name") == RECORDED_NAME for s in samples), name


def test_bucket_edges_are_vllms(served: tuple[SimServer, list[dict[str, int]], list[str]]) -> None:
    ours = vllm_families(httpx.get(served[0].url + "/metrics").text)
    recorded = vllm_families(recording("vllm-0.32-cpu-metrics-full.txt"))
    for name, (kind, _, samples) in recorded.items():
        if kind == "histogram":
            edges = [s.labels["le"] for s in samples if s.name.endswith("_bucket")]
            assert [s.labels["le"] for s in ours[name][2] if s.name.endswith("_bucket")] == edges


def test_content_type_and_no_removed_names(
    served: tuple[SimServer, list[dict[str, int]], list[str]],
) -> None:
    response = httpx.get(served[0].url + "/metrics")
    assert response.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"
    assert not [name for name in REMOVED_NAMES if name in response.text]
    assert "process_start_time_seconds" in response.text


def test_counters_agree_with_what_was_served(
    served: tuple[SimServer, list[dict[str, int]], list[str]],
) -> None:
    sim, usages, reasons = served
    m = vllm_families(httpx.get(sim.url + "/metrics").text)
    prompt = sum(u["prompt_tokens"] for u in usages)
    generated = sum(u["completion_tokens"] for u in usages)
    assert value(m, "vllm:prompt_tokens_total") == prompt
    assert value(m, "vllm:generation_tokens_total") == generated
    assert value(m, "vllm:request_prompt_tokens_sum") == prompt
    assert value(m, "vllm:request_generation_tokens_sum") == generated
    assert value(m, "vllm:prefix_cache_queries_total") == prompt
    for reason in ("stop", "length", "abort", "error", "repetition"):
        expected = reasons.count(reason)
        assert value(m, "vllm:request_success_total", finished_reason=reason) == expected
    assert value(m, "vllm:e2e_request_latency_seconds_count") == len(usages)
    assert value(m, "vllm:time_to_first_token_seconds_count") == len(usages)
    gaps = sum(u["completion_tokens"] - 1 for u in usages)
    assert value(m, "vllm:inter_token_latency_seconds_count") == gaps
    assert value(m, "vllm:num_requests_running") == value(m, "vllm:num_requests_waiting") == 0
    assert value(m, "vllm:kv_cache_usage_perc") == 0
    assert value(m, "vllm:cache_config_info", enable_prefix_caching="True") == 1
