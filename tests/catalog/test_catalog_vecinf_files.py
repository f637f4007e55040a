"""vec-inf's own config files and entry points: a site that used vec-inf switches unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from anchor_files import anchor_file
from testkit import guide_custom_model_config

from vec_inf_flows.catalog.loader import load_catalog
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.catalog.resolve import resolve
from vec_inf_flows.errors import ConfigError, ConfigWarning

WriteYaml = Callable[[str, str], Path]
REPO = Path(__file__).resolve().parents[2]
VECINF_MODELS = anchor_file("config/models.yaml")
VECINF_ENVIRONMENT = anchor_file("config/environment.yaml")
# Where vec-inf's file has a vocabulary size that differs from the model's published
# config.json, ours keeps the published one (Qwen2.5 0.5B-3B tie their embeddings at 151936;
# llava-hf adds image tokens to Llama-2's 32000).
PUBLISHED_VOCAB = {
    "Qwen2.5-0.5B-Instruct": 151936,
    "Qwen2.5-1.5B-Instruct": 151936,
    "Qwen2.5-3B-Instruct": 151936,
    "Qwen2.5-Math-1.5B-Instruct": 151936,
    "DeepSeek-R1-Distill-Qwen-1.5B": 151936,
    "llava-1.5-7b-hf": 32064,
    "llava-1.5-13b-hf": 32064,
}
CPU_ENTRIES = {"all-MiniLM-L6-v2"}  # ours runs on CPU with the real engine; vec-inf's on a GPU


def vecinf_models() -> dict[str, dict[str, object]]:
    document = yaml.safe_load(VECINF_MODELS.read_text())
    return dict(document["models"])


def test_every_vecinf_model_is_built_in_with_its_resources() -> None:
    ours = load_catalog(environ={})
    theirs = vecinf_models()
    assert len(theirs) == 98
    for name, entry in theirs.items():
        config = ours.get(name)
        if name in CPU_ENTRIES:
            continue
        assert (config.gpus_per_node, config.num_nodes) == (
            entry["gpus_per_node"],
            entry["num_nodes"],
        ), name
        assert config.model_type == entry["model_type"], name
        assert config.vocab_size == PUBLISHED_VOCAB.get(name, entry["vocab_size"]), name
        assert config.engine == entry.get("engine", "vllm"), name
        mem = entry.get("mem_per_node", entry.get("mem-per-node"))
        if mem is not None:
            assert config.mem_per_node == mem, name


def test_vecinf_models_yaml_loads_unchanged_with_one_warning_per_oddity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEC_INF_CONFIG", str(VECINF_MODELS))
    with pytest.warns(ConfigWarning) as caught:
        catalog = load_catalog()
    notes = sorted(str(warning.message) for warning in caught)
    assert notes == [
        f"{VECINF_MODELS}: model '{name}': key 'mem-per-node' read as 'mem_per_node'."
        for name in sorted(["Kimi-K2-Instruct", "Kimi-K2.5", "Llama-4-Maverick-17B-128E-Instruct"])
    ]
    assert set(vecinf_models()) <= set(catalog.models)
    assert catalog.get("Kimi-K2.5").mem_per_node == "60G"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vec_inf_flows.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


def test_list_shows_every_model_of_vecinf_models_yaml(tmp_path: Path) -> None:
    """The user's path: ``VEC_INF_CONFIG=.../vec_inf/config/models.yaml vec-inf-flows list``."""
    env = {**os.environ, "HOME": str(tmp_path), "VEC_INF_CONFIG": str(VECINF_MODELS)}
    env["VEC_INF_FLOWS_HOME"] = str(tmp_path / "state")
    listed = _cli(env, "list", "--json-mode")
    assert listed.returncode == 0, listed.stderr
    assert set(vecinf_models()) <= set(json.loads(listed.stdout))
    assert listed.stderr.count("Warning: ") == 3
    table = _cli({**env, "COLUMNS": "200"}, "list")
    assert table.returncode == 0, table.stderr
    for name in vecinf_models():
        assert name in table.stdout


def test_vecinf_environment_yaml_becomes_site_defaults_and_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vec-inf's packaged environment.yaml as a site's VEC_INF_CONFIG_DIR, unchanged."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "environment.yaml").write_text(VECINF_ENVIRONMENT.read_text())
    monkeypatch.setenv("VEC_INF_CONFIG_DIR", str(site))
    with pytest.warns(ConfigWarning) as caught:
        catalog = load_catalog()
    notes = " ".join(str(warning.message) for warning in caught)
    assert "module_load_cmd 'module load apptainer' is not run" in notes
    assert "sglang_image_path ignored" in notes
    llama = catalog.get("Meta-Llama-3.1-8B-Instruct")
    assert llama.venv == "apptainer"
    assert llama.container_image == (
        "/model-weights/vec-inf-shared/vector-inference-vllm_latest.sif"
    )
    assert llama.resource_type == "l40s"
    assert catalog.rules.limits == {"gpus_per_node": 8, "num_nodes": 178, "cpus_per_task": 64}
    assert catalog.rules.required == {"account": "VEC_INF_ACCOUNT", "work_dir": "VEC_INF_WORK_DIR"}


def test_config_dir_models_then_model_config_then_vec_inf_config(
    tmp_path: Path, write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "models.yaml").write_text(
        "models:\n  Qwen3-8B:\n    time: '01:00:00'\n    qos: dir\n    partition: dir\n"
    )
    model_config = write_yaml("models:\n  Qwen3-8B:\n    qos: model-config\n", "mc.yaml")
    user_config = write_yaml("models:\n  Qwen3-8B:\n    partition: user\n", "user.yaml")
    monkeypatch.setenv("VEC_INF_CONFIG_DIR", str(site))
    monkeypatch.setenv("VEC_INF_MODEL_CONFIG", str(model_config))
    monkeypatch.setenv("VEC_INF_CONFIG", str(user_config))
    qwen = load_catalog().get("Qwen3-8B")
    assert (qwen.time, qwen.qos, qwen.partition) == ("01:00:00", "model-config", "user")


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("VEC_INF_MODEL_CONFIG", "Cannot read VEC_INF_MODEL_CONFIG file"),
        ("VEC_INF_CONFIG_DIR", "VEC_INF_CONFIG_DIR"),
    ],
)
def test_a_path_that_does_not_exist_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, message: str
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=message):
        load_catalog()


def test_the_guides_custom_model_entry_replaces_the_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's Qwen2.5-7B-Instruct-1M entry (1 GPU) over our 4-GPU built-in one."""
    monkeypatch.setenv("VEC_INF_CONFIG", str(guide_custom_model_config(tmp_path)))
    spec = resolve("Qwen2.5-7B-Instruct-1M")
    args = dict(spec.engine_args)
    assert spec.resources.gpus_per_node == 1
    assert "--tensor-parallel-size" not in args
    assert args["--max-model-len"] == 1010000 and args["--max-num-seqs"] == 256


def test_a_gpu_option_rescales_the_parallel_sizes() -> None:
    spec = resolve("Meta-Llama-3.1-70B-Instruct", LaunchOptions(gpus_per_node=2))
    assert dict(spec.engine_args)["--tensor-parallel-size"] == 2
    multi = resolve("Meta-Llama-3.1-405B-Instruct", LaunchOptions(num_nodes=4))
    args = dict(multi.engine_args)
    assert (args["--tensor-parallel-size"], args["--pipeline-parallel-size"]) == (4, 4)


def test_sizes_the_user_names_are_kept_and_checked() -> None:
    spec = resolve(
        "Meta-Llama-3.1-70B-Instruct",
        LaunchOptions(gpus_per_node=2, vllm_args="--tensor-parallel-size=1,--data-parallel-size=2"),
    )
    args = dict(spec.engine_args)
    assert (args["--tensor-parallel-size"], args["--data-parallel-size"]) == (1, 2)
    with pytest.raises(ConfigError, match="2 GPUs/node x 1 nodes = 2 GPUs"):
        resolve(
            "Meta-Llama-3.1-70B-Instruct",
            LaunchOptions(gpus_per_node=2, vllm_args="--tensor-parallel-size=4"),
        )
