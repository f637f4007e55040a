"""/metrics parsing, rates from two scrapes, and the table rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from vec_inf_flows.errors import ServerError
from vec_inf_flows.server.metrics import (
    MetricsSnapshot,
    ServerMetrics,
    derive,
    metrics_rows,
    parse_metrics,
)

METRICS = Path(__file__).parent.parent / "fixtures" / "metrics"


def _load(name: str, timestamp: float = 1000.0) -> MetricsSnapshot:
    return parse_metrics((METRICS / name).read_text(), timestamp)


def _v1_text(prompt: float, generation: float, *, e2e_sum: float, e2e_count: float) -> str:
    labels = 'engine="0",model_name="m"'
    return "\n".join(
        [
            f"vllm:num_requests_running{{{labels}}} 1.0",
            f"vllm:kv_cache_usage_perc{{{labels}}} 0.042",
            f"vllm:prompt_tokens_total{{{labels}}} {prompt}",
            f"vllm:generation_tokens_total{{{labels}}} {generation}",
            f"vllm:prefix_cache_queries_total{{{labels}}} {prompt}",
            f"vllm:prefix_cache_hits_total{{{labels}}} {prompt / 4}",
            f'vllm:request_success_total{{{labels},finished_reason="stop"}} {e2e_count}',
            f"vllm:e2e_request_latency_seconds_sum{{{labels}}} {e2e_sum}",
            f"vllm:e2e_request_latency_seconds_count{{{labels}}} {e2e_count}",
            "",
        ]
    )


@pytest.mark.parametrize(
    "name", ["vllm-0.32-cpu-metrics-full.txt", "vllm-0.32-cpu-metrics-trimmed.txt"]
)
def test_recorded_v1_metrics_match_the_file(name: str) -> None:
    m = derive(_load(name))
    assert m.engine == "vllm"
    assert m.total_prompt_tokens == 445
    assert m.total_generation_tokens == 964
    assert m.successful_requests == 13  # summed over finished_reason (the anchor showed 0)
    assert m.successful_by_reason == {
        "stop": 0,
        "length": 13,
        "abort": 0,
        "error": 0,
        "repetition": 0,
    }
    assert m.requests_running == 0 and m.requests_waiting == 0
    assert m.kv_cache_usage == 0 and m.kv_cache_label == "KV Cache Usage"
    assert m.requests_swapped is None and m.cpu_cache_usage is None
    assert m.prefix_cache_hit_rate == 0
    assert m.avg_request_latency == pytest.approx(44.40102243423462 / 13)
    assert m.avg_time_to_first_token == pytest.approx(2.0932188034057617 / 13)
    assert m.avg_inter_token_latency == pytest.approx(42.31786911899985 / 951)
    assert not m.latency_windowed


def test_full_recording_keeps_every_series_of_a_name() -> None:
    snapshot = _load("vllm-0.32-cpu-metrics-full.txt")
    assert snapshot.values["vllm:num_requests_waiting_by_reason"] == 0
    assert "vllm:time_to_first_token_seconds_bucket" not in snapshot.values
    assert "vllm:prompt_tokens_created" not in snapshot.values


def test_v0_names_are_understood() -> None:
    m = derive(_load("vllm-v0-sample.txt"))
    assert m.kv_cache_usage == pytest.approx(0.001)
    assert m.kv_cache_label == "GPU Cache Usage"
    assert m.cpu_cache_usage == 0 and m.requests_swapped == 0
    assert m.prefix_cache_hit_rate == pytest.approx(0.25)
    assert m.avg_inter_token_latency == pytest.approx(52.02 / 1734)
    assert m.successful_requests == 14 and m.preemptions == 3


def test_sglang_basics_are_understood() -> None:
    m = derive(_load("sglang-sample.txt"))
    assert m.engine == "sglang"
    assert (m.requests_running, m.requests_waiting) == (3, 1)
    assert m.kv_cache_usage == pytest.approx(0.28)
    assert m.prefix_cache_hit_rate == pytest.approx(0.5)
    assert m.total_prompt_tokens == 1200 and m.successful_requests == 20
    assert m.avg_time_to_first_token == pytest.approx(0.15)


def test_ratio_gauges_are_averaged_over_engines() -> None:
    text = (
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.2\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.4\n'
        'vllm:num_requests_running{engine="0",model_name="m"} 2\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 3\n'
    )
    m = derive(parse_metrics(text, 1.0))
    assert m.kv_cache_usage == pytest.approx(0.3)
    assert m.requests_running == 5


def test_first_scrape_has_no_rates() -> None:
    m = derive(parse_metrics(_v1_text(100, 200, e2e_sum=4, e2e_count=2), 10.0))
    assert m.prompt_throughput is None and m.generation_throughput is None
    assert m.window_seconds is None
    rows = dict(metrics_rows(m))
    assert rows["Prompt Throughput"] == "n/a"
    assert rows["Generation Throughput"] == "n/a"


def test_rates_come_from_the_delta_between_two_scrapes() -> None:
    before = parse_metrics(_v1_text(100, 200, e2e_sum=4, e2e_count=2), 10.0)
    after = parse_metrics(_v1_text(150, 300, e2e_sum=10, e2e_count=4), 12.0)
    m = derive(after, before)
    assert m.window_seconds == 2
    assert m.prompt_throughput == pytest.approx(25.0)
    assert m.generation_throughput == pytest.approx(50.0)
    assert m.avg_request_latency == pytest.approx(3.0)  # (10-4)/(4-2): the window's mean
    assert m.latency_windowed
    assert m.prefix_cache_hit_rate == pytest.approx(0.25)


def test_idle_server_shows_zero_throughput_and_the_cumulative_latency() -> None:
    before = parse_metrics(_v1_text(150, 300, e2e_sum=10, e2e_count=4), 12.0)
    after = parse_metrics(_v1_text(150, 300, e2e_sum=10, e2e_count=4), 14.0)
    m = derive(after, before)
    assert m.prompt_throughput == 0 and m.generation_throughput == 0
    assert m.avg_request_latency == pytest.approx(2.5) and not m.latency_windowed
    assert dict(metrics_rows(m))["Generation Throughput"] == "0.0 tokens/s"


def test_restarted_server_counters_do_not_give_negative_rates() -> None:
    before = parse_metrics(_v1_text(900, 900, e2e_sum=10, e2e_count=4), 12.0)
    after = parse_metrics(_v1_text(10, 20, e2e_sum=1, e2e_count=1), 14.0)
    m = derive(after, before)
    assert m.prompt_throughput is None and m.window_seconds is None


def test_rows_of_the_recording_are_formatted_like_the_guide() -> None:
    before = _load("vllm-0.32-cpu-metrics-trimmed.txt", 1000.0)
    after = _load("vllm-0.32-cpu-metrics-trimmed.txt", 1002.0)
    assert metrics_rows(derive(after, before)) == [
        ("Prompt Throughput", "0.0 tokens/s"),
        ("Generation Throughput", "0.0 tokens/s"),
        ("Requests Running", "0 reqs"),
        ("Requests Waiting", "0 reqs"),
        ("KV Cache Usage", "0.0%"),
        ("Prefix Cache Hit Rate", "0.0%"),
        ("Avg Request Latency", "3.4 s"),
        ("Time To First Token", "161 ms"),
        ("Inter-Token Latency", "44 ms"),
        ("Total Prompt Tokens", "445 tokens"),
        ("Total Generation Tokens", "964 tokens"),
        ("Successful Requests", "13 reqs"),
        ("Preemptions", "0"),
    ]


def test_v0_rows_include_the_v0_only_metrics() -> None:
    rows = dict(metrics_rows(derive(_load("vllm-v0-sample.txt"))))
    assert rows["Requests Swapped"] == "0 reqs"
    assert rows["GPU Cache Usage"] == "0.1%"
    assert rows["CPU Cache Usage"] == "0.0%"
    assert rows["Avg Request Latency"] == "2.6 s"
    assert rows["Total Prompt Tokens"] == "441 tokens"
    assert rows["Successful Requests"] == "14 reqs"


def test_rows_are_omitted_for_metrics_the_server_does_not_export() -> None:
    assert metrics_rows(ServerMetrics(engine="unknown")) == []
    assert metrics_rows(derive(parse_metrics("python_gc_objects_collected_total 5\n", 1.0))) == []


def test_text_that_is_not_prometheus_raises_server_error() -> None:
    with pytest.raises(ServerError, match="not Prometheus text"):
        parse_metrics("<html>502 Bad Gateway</html>\n", 1.0)


def test_rows_of_a_json_round_tripped_result_match_the_live_rows() -> None:
    m = derive(_load("vllm-0.32-cpu-metrics-full.txt"))
    assert metrics_rows(ServerMetrics.model_validate_json(m.model_dump_json())) == metrics_rows(m)
