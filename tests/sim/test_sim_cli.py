"""``vllm serve``'s flags parse the way vLLM parses them; unknown ones fail the argparse way."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vec_inf_flows.sim.cli import human_readable_int_or_auto, parse_config

USAGE = "usage: vllm serve [model_tag] [options]"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vec_inf_flows.sim", "serve", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_unknown_flag_exits_2_with_vllms_error() -> None:
    result = run_cli("/m/tiny", "--foo-bar", "3")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == USAGE
    assert lines[-1] == "vllm: error: unrecognized arguments: --foo-bar 3"


def test_bad_value_names_the_parser_like_vllm() -> None:
    result = run_cli("/m/tiny", "--max-model-len", "abc")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "vllm serve: error: argument --max-model-len: "
        "invalid human_readable_int_or_auto value: 'abc'"
    )


def test_removed_task_flag_gets_the_hint() -> None:
    result = run_cli("/m/tiny", "--task", "embed")
    assert result.returncode == 2
    assert "unrecognized arguments: --task embed" in result.stderr
    assert "use --runner pooling" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2048", 2048), ("32k", 32000), ("32K", 32768), ("1.5k", 1500), ("auto", None), ("-1", None)],
)
def test_max_model_len_values(text: str, expected: int | None) -> None:
    assert human_readable_int_or_auto(text) == expected


def test_flag_spellings_are_interchangeable() -> None:
    config = parse_config(
        [
            "--model=/models/llama",
            "--served_model_name",
            "a",
            "b",
            "--max_model_len=8k",
            "-tp",
            "4",
            "--pipeline-parallel-size=2",
            "-cc.mode=0",
            "-O3",
            "--no-enable-prefix-caching",
            "--max-num-seqs",
            "8",
            "--dtype",
            "half",
            "--gpu-memory-utilization",
            "0.5",
            "--enforce-eager",
            "--trust-remote-code",
            "--distributed-executor-backend",
            "mp",
            "--disable-log-stats",
            "--disable-uvicorn-access-log",
        ]
    )
    assert config.model == "/models/llama"
    assert config.served_model_names == ("a", "b") and config.served_model_name == "a"
    assert config.max_model_len == 8000
    assert (config.tensor_parallel_size, config.pipeline_parallel_size) == (4, 2)
    assert config.compilation_config == {"mode": 0}
    assert config.enable_prefix_caching is False
    assert (config.max_num_seqs, config.dtype, config.gpu_memory_utilization) == (8, "half", 0.5)
    assert config.disable_log_stats and config.disable_access_log
    assert config.runner == "generate"


def test_positional_model_and_json_compilation_config() -> None:
    config = parse_config(["/m/x", "--compilation-config", '{"mode": 3}', "--runner", "pooling"])
    assert config.model == "/m/x" and config.served_model_names == ("/m/x",)
    assert config.compilation_config == {"mode": 3}
    assert config.runner == "pooling"
    assert config.max_num_seqs == 256
    assert list(config.non_default_args)[:1] == ["model_tag"]


def test_sim_flags_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEC_INF_SIM_TOKENS_PER_SECOND", "42")
    monkeypatch.setenv("VEC_INF_SIM_CRASH_AFTER", "3")
    monkeypatch.setenv("VLLM_API_KEY", "k")
    config = parse_config(["/m/x", "--sim-seed", "7"])
    assert (config.tokens_per_second, config.crash_after, config.seed) == (42.0, 3, 7)
    assert config.api_keys == ("k",)
    assert parse_config(["/m/x", "--sim-tokens-per-second", "5"]).tokens_per_second == 5.0
