"""The Prefect UI's forms explain themselves: every parameter of every shipped flow and task has
a description (from the ``Args:`` docstrings Prefect reads), the launch options inside them
too, and block parameters are block references (the UI's block picker)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow, Task
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.collections import remove_nested_keys
from prefect.utilities.schema_tools.validation import preprocess_schema, validate

from vec_inf_flows import tasks
from vec_inf_flows.flows import batch_serve, cleanup, evaluate, serve_and_run

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]
BLOCK_PARAMETERS = {"cluster": "vec-inf-slurm-cluster", "server": "vec-inf-model-server"}
PICKED_BLOCK_ID = "0b2c5e6e-3f7c-4d1e-9a57-2d1c0e4b8f10"


def recipe(name: str, attribute: str) -> Flow[..., Any]:
    spec = importlib.util.spec_from_file_location(name, ROOT / "flows" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow: Flow[..., Any] = getattr(module, attribute)
    return flow


FLOWS = {
    "serve_and_run": serve_and_run,
    "evaluate": evaluate,
    "batch_serve": batch_serve,
    "cleanup": cleanup,
    "recipe nightly_eval": recipe("nightly_eval", "nightly_eval"),
    "recipe my_serve_and_run": recipe("serve_and_run", "my_serve_and_run"),
    **{
        # Module-path entrypoints, as a worker with no checkout loads them.
        f"deployment {entry['name']}": load_flow_from_entrypoint(entry["entrypoint"])
        for entry in DEPLOYED
    },
}
TASKS = {
    name: getattr(tasks, name) for name in tasks.__all__ if isinstance(getattr(tasks, name), Task)
}


def undocumented(schema: dict[str, Any]) -> list[str]:
    """Properties without a description, in the schema and in every model it refers to."""
    missing = [name for name, prop in schema["properties"].items() if not prop.get("description")]
    for model, definition in schema.get("definitions", {}).items():
        if definition.get("block_type_slug"):
            continue  # a block's own form: checked by the block standard suite
        missing += [
            f"{model}.{name}"
            for name, prop in definition.get("properties", {}).items()
            if not prop.get("description")
        ]
    return missing


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_flow_parameter_is_described(name: str) -> None:
    schema = parameter_schema(FLOWS[name]).model_dump()
    assert schema["properties"], "a flow without parameters?"
    assert undocumented(schema) == []


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_parameter_is_described(name: str) -> None:
    assert undocumented(parameter_schema(TASKS[name]).model_dump()) == []


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_block_parameters_are_block_references(name: str) -> None:
    schema = parameter_schema(FLOWS[name]).model_dump()
    for parameter, slug in BLOCK_PARAMETERS.items():
        prop = schema["properties"].get(parameter)
        if prop is None:
            continue
        refs = [branch["$ref"] for branch in prop.get("anyOf", [prop]) if "$ref" in branch]
        assert len(refs) == 1, f"{parameter} offers no block picker: {prop}"
        definition = schema["definitions"][refs[0].rsplit("/", 1)[-1]]
        assert definition["block_type_slug"] == slug


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_picked_block_passes_the_parameter_check(name: str) -> None:
    """A block picked in a run form arrives as ``{"$ref": ...}`` and is checked against the
    schema (by the UI with the keys it keeps, by the API as stored): it must match the block's
    reference and not the block's own schema, else both refuse it."""
    schema = parameter_schema(FLOWS[name]).model_dump()
    as_the_ui_sends_it = remove_nested_keys(["additionalProperties"], schema)
    for parameter in BLOCK_PARAMETERS.keys() & schema["properties"].keys():
        picked = {parameter: {"$ref": {"block_document_id": PICKED_BLOCK_ID}}}
        for form in (schema, as_the_ui_sends_it):
            errors = validate(picked, preprocess_schema(form), ignore_required=True)
            assert errors == [], f"{parameter}: {errors}"


def test_the_common_choices_come_first_in_serve_and_run() -> None:
    schema = parameter_schema(serve_and_run).model_dump()
    first = sorted(schema["properties"], key=lambda name: schema["properties"][name]["position"])
    assert first[:4] == ["model_name", "dataset", "output", "engine"]
    engine = schema["properties"]["engine"]
    assert {"vllm", "sglang", "sim"} <= {
        value for b in engine["anyOf"] for value in b.get("enum", [])
    }
