"""The user's file ($VEC_INF_CONFIG), its defaults section and VEC_INF_* variables."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vec_inf_flows.catalog.loader import Catalog, load_catalog
from vec_inf_flows.errors import ConfigError, ConfigWarning, ModelNotFoundError

WriteYaml = Callable[..., Path]


def _load(path: Path, **environ: str) -> Catalog:
    return load_catalog(environ={"VEC_INF_CONFIG": str(path), **environ})


def test_user_file_overrides_one_field_and_one_arg_and_adds_a_model(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        models:
          Meta-Llama-3.1-8B-Instruct:
            time: "02:00:00"
            vllm_args:
              --max-model-len: 8192
          Qwen2.5-7B-Instruct-Custom:
            model_family: Qwen2.5
            model_variant: 7B-Instruct-Custom
            model_type: LLM
            gpus_per_node: 1
            vocab_size: 152064
            model_weights_parent_dir: /h/me/model-weights
            vllm_args:
              --max-model-len: 1010000
        """
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    llama = catalog.get("Meta-Llama-3.1-8B-Instruct")
    assert llama.time == "02:00:00"
    assert llama.vllm_args == {"--max-model-len": 8192, "--max-num-seqs": 256}
    assert (llama.partition, llama.qos, llama.vocab_size) == ("a40", "m2", 128256)
    custom = catalog.get("Qwen2.5-7B-Instruct-Custom")
    assert (custom.cpus_per_task, custom.mem_per_node, custom.time) == (16, "64G", "08:00:00")
    assert custom.model_weights_parent_dir == "/h/me/model-weights"
    assert catalog.files == (str(path),)


def test_defaults_section_sets_site_values_but_not_a_models_own_sizing(
    write_yaml: WriteYaml,
) -> None:
    path = write_yaml(
        """
        defaults:
          partition: gpu
          qos: normal
          account: my-lab
          log_dir: /scratch/logs
          model_weights_parent_dir: /scratch/weights
          mem_per_node: 32G
          time: "04:00:00"
          env:
            HF_HUB_OFFLINE: 1
        models:
          New-Model-1B:
            model_family: New-Model
            model_variant: 1B
            model_type: LLM
            gpus_per_node: 1
            vocab_size: 32000
        """
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    llama = catalog.get("Meta-Llama-3.1-8B-Instruct")
    assert (llama.partition, llama.qos, llama.account) == ("gpu", "normal", "my-lab")
    assert (llama.log_dir, llama.model_weights_parent_dir) == ("/scratch/logs", "/scratch/weights")
    # Like vec-inf's environment defaults: a model that does not size itself takes them ...
    assert (llama.mem_per_node, llama.time) == ("32G", "04:00:00")
    smol = catalog.get("SmolLM2-135M-Instruct")  # ... a model that does keeps its own
    assert (smol.mem_per_node, smol.time) == ("6G", "00:30:00")
    assert llama.env == {"HF_HUB_OFFLINE": "1"}
    new = catalog.get("New-Model-1B")
    assert (new.mem_per_node, new.time, new.partition) == ("32G", "04:00:00", "gpu")


def test_environment_variables_fill_defaults(write_yaml: WriteYaml) -> None:
    environ = {
        "VEC_INF_ACCOUNT": "acct",
        "VEC_INF_WORK_DIR": "/work/dir",
        "VEC_INF_LOG_DIR": "/logs",
        "VEC_INF_PARTITION": "cpu",
        "VEC_INF_QOS": "low",
        "VEC_INF_MODEL_WEIGHTS_PARENT_DIR": "/weights",
    }
    smol = load_catalog(environ=environ).get("SmolLM2-135M-Instruct")
    assert (smol.account, smol.work_dir, smol.log_dir) == ("acct", "/work/dir", "/logs")
    assert (smol.partition, smol.qos, smol.model_weights_parent_dir) == ("cpu", "low", "/weights")
    # The user's entry for a model is more specific than the environment.
    path = write_yaml("models:\n  SmolLM2-135M-Instruct:\n    partition: debug\n")
    assert (
        load_catalog(environ={**environ, "VEC_INF_CONFIG": str(path)})
        .get("SmolLM2-135M-Instruct")
        .partition
        == "debug"
    )


def test_process_environment_is_read_by_default(
    monkeypatch: pytest.MonkeyPatch, write_yaml: WriteYaml
) -> None:
    path = write_yaml("models:\n  SmolLM2-135M-Instruct:\n    cpus_per_task: 4\n")
    monkeypatch.setenv("VEC_INF_CONFIG", str(path))
    monkeypatch.setenv("VEC_INF_PARTITION", "debug")
    smol = load_catalog().get("SmolLM2-135M-Instruct")
    assert (smol.cpus_per_task, smol.partition) == (4, "debug")


def test_edited_user_file_is_reloaded(write_yaml: WriteYaml) -> None:
    path = write_yaml("models:\n  SmolLM2-135M-Instruct:\n    cpus_per_task: 4\n")
    assert (
        load_catalog(environ={"VEC_INF_CONFIG": str(path)})
        .get("SmolLM2-135M-Instruct")
        .cpus_per_task
        == 4
    )
    path.write_text("models:\n  SmolLM2-135M-Instruct:\n    cpus_per_task: 8\n")
    os.utime(path, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    assert (
        load_catalog(environ={"VEC_INF_CONFIG": str(path)})
        .get("SmolLM2-135M-Instruct")
        .cpus_per_task
        == 8
    )


def test_anchor_format_file_loads_unchanged(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        """
        models:
          Meta-Llama-3.1-8B-Instruct:
            model_family: Meta-Llama-3.1
            model_variant: 8B-Instruct
            model_type: LLM
            gpus_per_node: 1
            num_nodes: 1
            vocab_size: 128256
            cpus_per_task: 16
            mem_per_node: 64G
            time: 08:00:00
            qos: ""
            partition: ""
            resource_type: l40s
            account: vector
            work_dir: /h/me/work
            exclude: ""
            nodelist: gpu[001-004]
            bind: "$SLURM_TMPDIR:$HOME/.cache"
            venv: apptainer
            data_type: auto
            log_dir: ~/.vec-inf-logs
            model_weights_parent_dir: /model-weights
            hf_model: meta-llama/Llama-3.1-8B-Instruct
            engine: vllm
            env:
              HF_HOME: /h/me/.cache/huggingface
            vllm_args:
              --max-model-len: 131072
              --enable-prefix-caching: true
            sglang_args:
              --context-length: 65536
              --tp-size: 1
          Custom-10B:
            model_family: Custom
            model_variant: 10B
            model_type: Reward_Modeling
            gpus_per_node: 2
            num_nodes: 1
            vocab_size: 32000
            time: 10:00:00
            vllm_args:
              --tensor-parallel-size: 2
        """
    )
    catalog = load_catalog(environ={"VEC_INF_CONFIG": str(path)})
    llama = catalog.get("Meta-Llama-3.1-8B-Instruct")
    assert llama.qos is None and llama.partition is None and llama.exclude is None
    assert (llama.resource_type, llama.account, llama.nodelist) == (
        "l40s",
        "vector",
        "gpu[001-004]",
    )
    assert (llama.venv, llama.bind, llama.data_type) == (
        "apptainer",
        "$SLURM_TMPDIR:$HOME/.cache",
        "auto",
    )
    assert llama.hf_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert llama.env == {"HF_HOME": "/h/me/.cache/huggingface"}
    assert llama.vllm_args["--enable-prefix-caching"] is True
    assert llama.sglang_args == {  # merged per flag over the built-in entry's
        "--context-length": 65536,
        "--max-running-requests": 256,
        "--tensor-parallel-size": 1,
    }
    # YAML 1.1 would read 10:00:00 as the number 36000; it stays a time here.
    assert catalog.get("Custom-10B").time == "10:00:00"


def test_yaml_syntax_error_names_file_and_line(write_yaml: WriteYaml) -> None:
    path = write_yaml("models:\n  Foo:\n    model_family: Foo\n    bad: line: here\n")
    with pytest.raises(ConfigError) as caught:
        _load(path)
    # libyaml says "... not allowed in this context", pure-Python PyYAML "... allowed here".
    assert str(caught.value).startswith(f"{path}:4: mapping values are not allowed")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  Meta-Llama-3.1-8B-Instruct:\n    flavour: 60G\n",
            "model 'Meta-Llama-3.1-8B-Instruct': unknown key 'flavour' ignored.",
        ),
        (
            "models:\n  Meta-Llama-3.1-8B-Instruct:\n    mem_per_nod: 60G\n",
            "unknown key 'mem_per_nod' ignored (did you mean 'mem_per_node'?).",
        ),
        ("model:\n  X: {}\n", "unknown top-level key 'model' ignored (did you mean 'models'?)"),
        ("defaults:\n  gpus_per_node: 2\n", "defaults: unknown key 'gpus_per_node' ignored"),
    ],
)
def test_unknown_keys_are_warnings_and_the_file_still_loads(
    write_yaml: WriteYaml, text: str, message: str
) -> None:
    """Another tool's file (vec-inf's own models.yaml carries a typo) must load; what we do
    not understand is said, never silently dropped."""
    path = write_yaml(text)
    with pytest.warns(ConfigWarning) as caught:
        catalog = _load(path)
    notes = [str(warning.message) for warning in caught]
    assert any(note.startswith(str(path)) and message in note for note in notes), notes
    assert catalog.get("Meta-Llama-3.1-8B-Instruct").gpus_per_node == 1


def test_a_dashed_known_key_is_read_as_the_key(write_yaml: WriteYaml) -> None:
    """vec-inf silently ignored ``mem-per-node: 60G`` (its jobs asked 64G); here it counts."""
    path = write_yaml("models:\n  Meta-Llama-3.1-8B-Instruct:\n    mem-per-node: 60G\n")
    with pytest.warns(ConfigWarning, match="key 'mem-per-node' read as 'mem_per_node'"):
        catalog = _load(path)
    assert catalog.get("Meta-Llama-3.1-8B-Instruct").mem_per_node == "60G"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  'bad name;rm':\n    model_family: x\n", "invalid model name 'bad name;rm'"),
        ("models: [1, 2]\n", "'models' must be a mapping"),
        ("models:\n  Foo: 3\n", "model 'Foo': expected a mapping"),
        ("- a\n- b\n", "expected a mapping with a 'models:' section"),
        ("models:\n  Foo:\n    model_name: Bar\n", "model_name 'Bar' differs from its key"),
    ],
)
def test_shape_errors_name_file_model_and_key(
    write_yaml: WriteYaml, text: str, message: str
) -> None:
    path = write_yaml(text)
    with pytest.raises(ConfigError) as caught:
        _load(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  SmolLM2-135M-Instruct:\n    time: '25:99:00'\n",
            "time '25:99:00': expected HH:MM:SS or D-HH:MM:SS",
        ),
        ("models:\n  SmolLM2-135M-Instruct:\n    time: '00:00:00'\n", "time limit above zero"),
        (
            "models:\n  SmolLM2-135M-Instruct:\n    mem_per_node: lots\n",
            "mem_per_node 'lots': expected a size",
        ),
        (
            "models:\n  SmolLM2-135M-Instruct:\n    partition: 'a40; rm -rf ~'\n",
            "partition 'a40; rm -rf ~'",
        ),
        ("models:\n  SmolLM2-135M-Instruct:\n    engine: tgi\n", "engine 'tgi'"),
        (
            "models:\n  SmolLM2-135M-Instruct:\n    env: {'BAD NAME': x}\n",
            "invalid variable name 'BAD NAME'",
        ),
        ('models:\n  SmolLM2-135M-Instruct:\n    vllm_args: {--x: "a\\nb"}\n', "newline or NUL"),
        (
            "models:\n  Only-Family:\n    model_family: Only\n",
            "model_type: required field is missing",
        ),
        ("defaults:\n  time: 'soon'\n", "time 'soon'"),
    ],
)
def test_values_are_validated_after_merging(write_yaml: WriteYaml, text: str, message: str) -> None:
    path = write_yaml(text)
    with pytest.raises(ConfigError) as caught:
        _load(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_bad_environment_variable_is_named(write_yaml: WriteYaml) -> None:
    with pytest.raises(ConfigError, match=r"^VEC_INF_PARTITION: model '.*': partition 'a b'"):
        load_catalog(environ={"VEC_INF_PARTITION": "a b"})


def test_missing_user_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        ConfigError, match=f"Cannot read VEC_INF_CONFIG file {missing}: no such file"
    ):
        _load(missing)


def test_unreadable_user_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"Cannot read VEC_INF_CONFIG file {tmp_path}"):
        _load(tmp_path)  # a directory cannot be read as a file


def test_empty_user_file_changes_nothing(write_yaml: WriteYaml) -> None:
    path = write_yaml("")
    assert _load(path).get("SmolLM2-135M-Instruct").cpus_per_task == 2  # type: ignore[attr-defined]


def test_unknown_model_suggests_close_names() -> None:
    catalog = load_catalog(environ={})
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.get("llama-3.1-8b-instruct")
    assert caught.value.suggestions[0] == "Meta-Llama-3.1-8B-Instruct"
    assert "Did you mean" in str(caught.value)
    assert catalog.suggest("smollm2") == ["SmolLM2-135M-Instruct"]
    assert catalog.suggest("QWEN3-8b")[0] == "Qwen3-8B"
    assert catalog.suggest("zzzzzz") == []
