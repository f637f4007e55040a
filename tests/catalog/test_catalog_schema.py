"""Field rules of ModelConfig: what a Slurm script may receive."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vec_inf_flows.catalog.schema import ModelConfig, describe_validation_error
from vec_inf_flows.catalog.yaml_load import parse_yaml

BASE: dict[str, Any] = {
    "model_name": "M",
    "model_family": "F",
    "model_type": "LLM",
    "gpus_per_node": 1,
    "vocab_size": 10,
}


def _config(**changes: Any) -> ModelConfig:
    return ModelConfig.model_validate({**BASE, **changes})


def _problem(**changes: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        _config(**changes)
    return describe_validation_error(caught.value)


@pytest.mark.parametrize("value", ["08:00:00", "0:30:00", "100:00:00", "1-00:00:00", "7-23:59:59"])
def test_accepted_times(value: str) -> None:
    assert _config(time=value).time == value


@pytest.mark.parametrize(
    "value", ["00:00:00", "0-00:00:00", "30:00", "1:60:00", "1-24:00:00", "8h", "08:00:00;id", ""]
)
def test_rejected_times(value: str) -> None:
    assert _problem(time=value).startswith("time")


@pytest.mark.parametrize(("value", "normal"), [("64G", "64G"), ("512m", "512M"), ("1T", "1T")])
def test_accepted_memory(value: str, normal: str) -> None:
    assert _config(mem_per_node=value).mem_per_node == normal


@pytest.mark.parametrize("value", ["64", "0G", "64GB", "-1G", "64 G", "lots"])
def test_rejected_memory(value: str) -> None:
    assert _problem(mem_per_node=value).startswith("mem_per_node")


@pytest.mark.parametrize("value", ["Qwen2.5-7B_x", "gemma-2-9b-it", "0abc"])
def test_accepted_names(value: str) -> None:
    assert _config(model_name=value).model_name == value


@pytest.mark.parametrize(
    "value", ["-rf", ".hidden", "a b", "a;b", "a/b", "$(x)", "a`b`", "x" * 129]
)
def test_rejected_names(value: str) -> None:
    assert _problem(model_name=value).startswith("model_name")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partition", "a40,t4v2"),
        ("qos", "m2"),
        ("account", "lab_01"),
        ("nodelist", "gpu[001-004],gpu010"),
    ],
)
def test_accepted_slurm_values(field: str, value: str) -> None:
    assert getattr(_config(**{field: value}), field) == value


@pytest.mark.parametrize("value", ["a b", "a'", 'a"', "a;b", "$X", "`x`", "a\nb", "a|b"])
@pytest.mark.parametrize("field", ["partition", "qos", "account", "resource_type", "exclude"])
def test_rejected_slurm_values(field: str, value: str) -> None:
    assert _problem(**{field: value}).startswith(field)


@pytest.mark.parametrize("field", ["work_dir", "log_dir", "venv", "bind", "hf_model", "python"])
def test_paths_refuse_newline_and_nul(field: str) -> None:
    assert _config(**{field: "/ok path/$HOME"}).model_dump()[field] == "/ok path/$HOME"
    assert "newline or NUL" in _problem(**{field: "/a\nb"})
    assert "newline or NUL" in _problem(**{field: "/a\x00b"})


def test_model_types_and_limits() -> None:
    for model_type in ("LLM", "VLM", "Text_Embedding", "Reward_Modeling", "OCR", "Audio"):
        assert _config(model_type=model_type).model_type == model_type
    assert _problem(model_type="Chat").startswith("model_type 'Chat'")
    assert _problem(gpus_per_node=-1).startswith("gpus_per_node")
    assert _problem(num_nodes=1025).startswith("num_nodes")
    assert _problem(cpus_per_task=0).startswith("cpus_per_task")


def test_env_values_are_strings_and_names_strict() -> None:
    assert _config(env={"A": 1, "B": True, "C": "x=y"}).env == {"A": "1", "B": "true", "C": "x=y"}
    assert "invalid variable name '1A'" in _problem(env={"1A": "x"})


def test_all_problems_are_counted_in_one_line() -> None:
    assert _problem(time="x", mem_per_node="y").endswith("(and 1 more problem)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("time: 10:00:00", "10:00:00"),
        ("time: 1:30", "1:30"),
        ("time: 190:20:30.5", "190:20:30.5"),
        ("n: 42", 42),
        ("f: 0.5", 0.5),
    ],
)
def test_yaml_has_no_base_sixty_numbers(text: str, expected: object) -> None:
    document = parse_yaml(text, "t.yaml")
    assert isinstance(document, dict)
    assert next(iter(document.values())) == expected
