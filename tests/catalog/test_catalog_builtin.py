"""The shipped models.yaml: complete, valid, and true to each model's published facts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from vec_inf_flows.catalog.listing import list_models, model_config_dump
from vec_inf_flows.catalog.loader import load_catalog
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.catalog.resolve import resolve

CATALOG = load_catalog(environ={})


def test_ships_at_least_sixty_models_plus_the_two_cpu_models() -> None:
    gpu_models = [c for c in CATALOG.models.values() if c.gpus_per_node > 0]
    cpu_models = sorted(c.model_name for c in CATALOG.models.values() if c.gpus_per_node == 0)
    assert len(gpu_models) >= 60
    assert cpu_models == ["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"]


def test_covers_every_model_type() -> None:
    types = {config.model_type for config in CATALOG.models.values()}
    assert {"LLM", "VLM", "Text_Embedding", "Reward_Modeling"} <= types


@pytest.mark.parametrize(
    ("name", "vocab_size"),
    [
        ("Meta-Llama-3.1-8B-Instruct", 128256),
        ("Llama-3.3-70B-Instruct", 128256),
        ("Llama-3.2-11B-Vision-Instruct", 128256),
        ("Qwen2.5-0.5B-Instruct", 151936),
        ("Qwen2.5-7B-Instruct", 152064),
        ("Qwen2.5-72B-Instruct", 152064),
        ("Qwen3-0.6B", 151936),
        ("Qwen3-235B-A22B", 151936),
        ("Mistral-7B-Instruct-v0.3", 32768),
        ("Mistral-Nemo-Instruct-2407", 131072),
        ("Mixtral-8x7B-Instruct-v0.1", 32000),
        ("gemma-2-9b-it", 256000),
        ("gemma-3-27b-it", 262208),
        ("Phi-3-mini-4k-instruct", 32064),
        ("phi-4", 100352),
        ("all-MiniLM-L6-v2", 30522),
        ("bge-base-en-v1.5", 30522),
        ("SmolLM2-135M-Instruct", 49152),
    ],
)
def test_vocab_sizes_match_published_configs(name: str, vocab_size: int) -> None:
    assert CATALOG.get(name).vocab_size == vocab_size


@pytest.mark.parametrize("name", sorted(CATALOG.models))
def test_every_model_resolves_to_a_consistent_launch_spec(name: str) -> None:
    config = CATALOG.get(name)
    assert name == (
        f"{config.model_family}-{config.model_variant}"
        if config.model_variant
        else config.model_family
    )
    spec = resolve(name, catalog=CATALOG)  # raises if GPUs and TP x PP disagree
    args: dict[str, Any] = dict(spec.engine_args)
    total = config.gpus_per_node * config.num_nodes
    if total > 1:
        assert args["--tensor-parallel-size"] * args.get("--pipeline-parallel-size", 1) == total
    if config.num_nodes > 1 and spec.engine == "vllm":  # SGLang spans nodes with TP alone
        assert args["--pipeline-parallel-size"] == config.num_nodes
    if config.model_type in ("Text_Embedding", "Reward_Modeling"):
        assert args["--runner"] == "pooling"
    assert spec.resources.time


def test_cpu_demo_models_are_exactly_as_the_demo_needs() -> None:
    smol = CATALOG.get("SmolLM2-135M-Instruct")
    assert (smol.model_family, smol.model_variant, smol.model_type) == (
        "SmolLM2",
        "135M-Instruct",
        "LLM",
    )
    assert (smol.gpus_per_node, smol.cpus_per_task, smol.mem_per_node, smol.time) == (
        0,
        2,
        "6G",
        "00:30:00",
    )
    assert smol.vllm_args == {"--max-model-len": 2048, "--compilation-config": {"mode": 0}}
    minilm = CATALOG.get("all-MiniLM-L6-v2")
    assert (minilm.model_type, minilm.vocab_size, minilm.gpus_per_node) == (
        "Text_Embedding",
        30522,
        0,
    )
    assert minilm.vllm_args == {"--runner": "pooling"}


def test_gpu_defaults_follow_the_guide() -> None:
    llama = CATALOG.get("Meta-Llama-3.1-8B-Instruct")
    assert (llama.partition, llama.qos, llama.time, llama.mem_per_node) == (
        "a40",
        "m2",
        "08:00:00",
        "64G",
    )
    assert llama.vllm_args == {"--max-model-len": 131072, "--max-num-seqs": 256}


def test_listing_and_config_dump() -> None:
    rows = list_models(CATALOG)
    assert [row.name for row in rows] == sorted(row.name for row in rows)
    smol = next(row for row in rows if row.name == "SmolLM2-135M-Instruct")
    assert (smol.family, smol.variant, smol.model_type) == ("SmolLM2", "135M-Instruct", "LLM")
    dump = model_config_dump("Meta-Llama-3.1-70B-Instruct", CATALOG)
    assert dump["vllm_args"] == {
        "--tensor-parallel-size": 4,
        "--max-model-len": 65536,
        "--max-num-seqs": 256,
    }
    assert "log_dir" not in dump and "account" not in dump  # unset and per-user fields are left out
    assert dump["vocab_size"] == 128256


def test_loading_is_cached_within_a_process() -> None:
    assert load_catalog(environ={}) is load_catalog(environ={})


def test_catalog_import_does_not_pull_in_prefect() -> None:
    code = (
        "import sys; from vec_inf_flows.catalog import load_catalog; load_catalog();"
        "assert 'prefect' not in sys.modules, 'prefect imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin"})


def test_sim_engine_runs_from_this_interpreter() -> None:
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(engine="sim"), CATALOG)
    assert spec.engine == "sim"
    assert spec.python == sys.executable
    assert dict(spec.engine_args)["--max-model-len"] == 2048
