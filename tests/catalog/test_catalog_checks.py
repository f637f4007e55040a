"""Pre-submit checks on the merged config: one clear line each, before anything is queued."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.catalog.resolve import resolve
from vec_inf_flows.errors import ConfigError, ConfigWarning

WriteYaml = Callable[[str, str], Path]


@pytest.mark.parametrize(("gpus", "nodes"), [(3, 1), (6, 1), (2, 3)])
def test_gpu_counts_must_be_powers_of_two(gpus: int, nodes: int) -> None:
    with pytest.raises(ConfigError, match=r"use a power of two") as caught:
        resolve("Meta-Llama-3.1-70B-Instruct", LaunchOptions(gpus_per_node=gpus, num_nodes=nodes))
    assert "Model 'Meta-Llama-3.1-70B-Instruct'" in str(caught.value)


def test_missing_weights_warn_and_strict_refuses(tmp_path: Path) -> None:
    options = {"model_weights_parent_dir": str(tmp_path), "engine": "vllm"}
    with pytest.warns(ConfigWarning, match=f"no weights at {tmp_path}/Qwen3-8B"):
        resolve("Qwen3-8B", LaunchOptions(**options))
    with pytest.raises(ConfigError, match=r"no weights at .* \(--strict\)"):
        resolve("Qwen3-8B", LaunchOptions(**options, strict=True))
    (tmp_path / "Qwen3-8B").mkdir()
    resolve("Qwen3-8B", LaunchOptions(**options, strict=True))  # present: nothing to say


def test_weights_are_not_checked_for_a_hub_id_or_the_simulator(tmp_path: Path) -> None:
    parent = {"model_weights_parent_dir": str(tmp_path), "strict": True}
    resolve("Qwen3-8B", LaunchOptions(**parent, hf_model="Qwen/Qwen3-8B"))
    resolve("Qwen3-8B", LaunchOptions(**parent, engine="sim"))


def test_site_limits_and_required_fields_from_environment_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "environment.yaml").write_text(
        "limits:\n  max_gpus_per_node: 4\n  max_num_nodes: 2\n"
        "required_args:\n  account: VEC_INF_ACCOUNT\n"
    )
    monkeypatch.setenv("VEC_INF_CONFIG_DIR", str(site))
    sim = {"engine": "sim"}
    with pytest.raises(ConfigError, match=r"account is required on this site .* VEC_INF_ACCOUNT"):
        resolve("Qwen3-8B", LaunchOptions(**sim))
    with pytest.raises(ConfigError, match="gpus_per_node 8 is above this site's limit of 4"):
        resolve("Qwen3-8B", LaunchOptions(**sim, account="lab", gpus_per_node=8))
    resolve("Qwen3-8B", LaunchOptions(**sim, account="lab"))
    monkeypatch.setenv("VEC_INF_ACCOUNT", "lab")
    resolve("Qwen3-8B", LaunchOptions(**sim))  # the variable fills it, as in vec-inf
