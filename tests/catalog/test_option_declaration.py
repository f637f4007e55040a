"""One declaration of the launch options: the pydantic model, its UI descriptions and the CLI's
flags all come from it, and the CLI builds its flags without importing pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from vec_inf_flows.catalog.option_declaration import LaunchOptionFields, declared_options
from vec_inf_flows.catalog.options import LaunchOptions, merge_options
from vec_inf_flows.cli.main import _launch_overrides, build_parser, glue_dash_values


def test_the_model_has_exactly_the_declared_fields_each_described() -> None:
    declared = [option.name for option in declared_options()]
    assert list(LaunchOptions.model_fields) == declared
    schema = LaunchOptions.model_json_schema()["properties"]
    for option in declared_options():
        assert schema[option.name]["description"] == option.option.description
        assert option.option.description.endswith(".")


def test_the_cli_flags_are_the_declared_ones_with_the_anchors_names() -> None:
    launch = build_parser()._subparsers._group_actions[0].choices["launch"]  # type: ignore[union-attr]
    flags = {flag: action.dest for action in launch._actions for flag in action.option_strings}
    for option in declared_options():
        for flag in option.option.flags:
            assert flags[flag] == option.name
    assert {"-A", "--account", "-D", "--work-dir", "--vllm-args", "--mem-per-node"} <= set(flags)
    assert not hasattr(LaunchOptionFields, "api_key")  # a secret is never a launch option


def test_parsed_flags_become_launch_options() -> None:
    argv = ["launch", "M", "--num-nodes", "2", "-A", "lab", "--vllm-args", "--max-num-seqs=48"]
    args = build_parser().parse_args(glue_dash_values(argv))
    overrides = _launch_overrides(args)
    assert overrides == {"num_nodes": 2, "account": "lab", "vllm_args": "--max-num-seqs=48"}
    assert LaunchOptions.model_validate(overrides).num_nodes == 2


@pytest.mark.parametrize(
    "argv", [["--help"], ["list"], ["list", "M"], ["status", "1"], ["status"], ["launch", "M"]]
)
def test_parsing_a_command_imports_no_pydantic_yaml_rich_or_prefect(argv: list[str]) -> None:
    """As ``main`` parses: the launch flags are built only for the commands that take them."""
    code = (
        "import sys\n"
        "from vec_inf_flows.cli.main import glue_dash_values, parser_for\n"
        f"argv = glue_dash_values({argv!r})\n"
        "try:\n    parser_for(argv).parse_args(argv)\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('pydantic', 'yaml', 'rich', 'prefect', 'dataclasses')\n"
        "loaded = {m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}\n"
        "if 'vec_inf_flows.catalog.option_declaration' in sys.modules:\n"
        "    loaded.add('declaration')\n"
        "print(sorted(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert loaded == (["declaration"] if argv[0] == "launch" else [])


def test_layers_merge_lowest_first_env_per_name_and_engine_args_per_flag() -> None:
    merged = merge_options(
        {"partition": "a40", "env": "A=1,B=1", "vllm_args": "--max-model-len=4096"},
        LaunchOptions(partition="gpu", env={"B": "2"}, vllm_args={"--max-num-seqs": 48}),
        None,
        {"time": "00:10:00"},
    )
    assert merged.set_values() == {
        "partition": "gpu",
        "time": "00:10:00",
        "env": {"A": "1", "B": "2"},
        "vllm_args": {"--max-model-len": 4096, "--max-num-seqs": 48},
    }
    with pytest.raises(ValidationError, match="partitoin"):
        merge_options({"partitoin": "a40"})
