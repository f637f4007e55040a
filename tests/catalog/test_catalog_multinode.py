"""Which multi-node mode a launch gets, and the engine arguments that contradict it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vec_inf_flows.catalog.loader import load_catalog
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.catalog.resolve import resolve, resolve_batch
from vec_inf_flows.errors import ConfigError

CATALOG = load_catalog(environ={})
MODEL = "Meta-Llama-3.1-405B-Instruct"  # 8 nodes x 4 GPUs in the catalog
WriteYaml = Callable[..., Path]


def test_native_is_the_default_and_runs_vllms_own_executor() -> None:
    spec = resolve(MODEL, LaunchOptions(), CATALOG)
    assert spec.resources.num_nodes == 8
    assert spec.multi_node_mode == "native"


def test_a_launch_option_or_the_executor_flag_chooses_ray() -> None:
    assert resolve(MODEL, LaunchOptions(multi_node_mode="ray"), CATALOG).multi_node_mode == "ray"
    by_flag = LaunchOptions(vllm_args="--distributed-executor-backend=ray")
    assert resolve(MODEL, by_flag, CATALOG).multi_node_mode == "ray"


def test_the_catalog_entry_chooses_and_the_launch_overrides(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        models:
          Meta-Llama-3.1-405B-Instruct:
            multi_node_mode: ray
        """
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    assert resolve(MODEL, LaunchOptions(), catalog).multi_node_mode == "ray"
    native = LaunchOptions(multi_node_mode="native")
    assert resolve(MODEL, native, catalog).multi_node_mode == "native"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            LaunchOptions(multi_node_mode="native", vllm_args="--distributed-executor-backend=ray"),
            "multi_node_mode native runs vLLM's 'mp' executor, but vllm_args set "
            "--distributed-executor-backend ray",
        ),
        (
            LaunchOptions(multi_node_mode="ray", vllm_args="--distributed-executor-backend=mp"),
            "multi_node_mode ray runs vLLM's 'ray' executor",
        ),
        (
            LaunchOptions(vllm_args="--nnodes=8,-r=0"),
            "drop --nnodes, --node-rank from vllm_args",
        ),
        (LaunchOptions(multi_node_mode="mpi"), "multi_node_mode 'mpi'"),
    ],
)
def test_contradictions_are_one_clear_line(options: LaunchOptions, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(MODEL, options, CATALOG)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_single_node_launches_ignore_the_mode() -> None:
    spec = resolve("Meta-Llama-3.1-8B-Instruct", LaunchOptions(multi_node_mode="ray"), CATALOG)
    assert spec.resources.num_nodes == 1
    # --nnodes is harmless on one node, and is the user's business there
    resolve("Meta-Llama-3.1-8B-Instruct", LaunchOptions(vllm_args="--nnodes=1"), CATALOG)


def test_batch_launch_refuses_a_multi_node_member_and_says_what_to_do() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_batch(["Meta-Llama-3.1-8B-Instruct", MODEL])
    assert "launch it on its own with `launch`" in str(caught.value)
