"""Engine flags: the guide's string form and YAML mappings, parsed without the anchor's bugs."""

from __future__ import annotations

import pytest

from vec_inf_flows.catalog.engine_args import (
    merge_engine_args,
    parse_engine_args,
    split_top_level,
    to_argv,
)
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.spec import ArgValue


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "--max-model-len=65536,--compilation-config=3",
            {"--max-model-len": 65536, "--compilation-config": 3},
        ),
        (
            '--compilation-config={"mode": 0, "level": 3},--max-model-len=2048',
            {"--compilation-config": {"mode": 0, "level": 3}, "--max-model-len": 2048},
        ),
        (
            '--hf-overrides={"rope_scaling": {"type": "yarn", "factor": 4}}',
            {"--hf-overrides": {"rope_scaling": {"type": "yarn", "factor": 4}}},
        ),
        ("--limit-mm-per-prompt=[1, 2]", {"--limit-mm-per-prompt": [1, 2]}),
        ("--chat-template=a=b=c", {"--chat-template": "a=b=c"}),
        ("--served-model-name='x,y',--seed=1", {"--served-model-name": "x,y", "--seed": 1}),
        ("--max-model-len 4096", {"--max-model-len": 4096}),
        ("--enable-prefix-caching", {"--enable-prefix-caching": True}),
        ("--no-enable-prefix-caching", {"--enable-prefix-caching": False}),
        ("--enforce-eager=false", {"--enforce-eager": False}),
        ("--enforce-eager=TRUE", {"--enforce-eager": True}),
        ("--max_model_len=8", {"--max-model-len": 8}),
        (
            "-tp=4,-pp=2,-dp=2",
            {"--tensor-parallel-size": 4, "--pipeline-parallel-size": 2, "--data-parallel-size": 2},
        ),
        ("-cc=3", {"--compilation-config": 3}),
        ("-cc.mode=3", {"--compilation-config.mode": 3}),
        ("-q=awq", {"--quantization": "awq"}),
        ("-O3", {"--optimization-level": 3}),
        ("-O=2", {"--optimization-level": 2}),
        ("-O0,--seed=0", {"--optimization-level": 0, "--seed": 0}),
        ("--gpu-memory-utilization=0.85", {"--gpu-memory-utilization": "0.85"}),
        ("--dtype=float16,,", {"--dtype": "float16"}),
        ("", {}),
        ("--seed=1,--seed=2", {"--seed": 2}),
    ],
)
def test_string_form(text: str, expected: dict[str, ArgValue]) -> None:
    assert parse_engine_args(text) == expected


def test_yaml_mapping_form() -> None:
    parsed = parse_engine_args(
        {
            "--max-model-len": 2048,
            "--compilation-config": '{"mode": 0}',
            "--limit-mm-per-prompt": {"image": 2},
            "--enable-prefix-caching": False,
            "--trust-remote-code": True,
            "--enforce-eager": None,
            "-tp": 2,
        }
    )
    assert parsed == {
        "--max-model-len": 2048,
        "--compilation-config": {"mode": 0},
        "--limit-mm-per-prompt": {"image": 2},
        "--enable-prefix-caching": False,
        "--trust-remote-code": True,
        "--enforce-eager": True,
        "--tensor-parallel-size": 2,
    }


def test_argv_rendering() -> None:
    args = parse_engine_args(
        '--max-model-len=2048,--compilation-config={"mode": 0},--enable-x,--no-enable-y'
    )
    assert to_argv(args) == [
        "--max-model-len",
        "2048",
        "--compilation-config",
        '{"mode": 0}',
        "--enable-x",
        "--no-enable-y",
    ]
    assert to_argv([("--x", [1, 2])]) == ["--x", "[1, 2]"]


def test_yaml_false_disables_instead_of_enabling() -> None:
    assert to_argv(parse_engine_args({"--enable-prefix-caching": False})) == [
        "--no-enable-prefix-caching"
    ]
    assert to_argv(parse_engine_args({"--no-enable-prefix-caching": False})) == [
        "--enable-prefix-caching"
    ]


def test_merge_later_wins_and_keeps_order() -> None:
    base = parse_engine_args(
        {"--max-model-len": 8192, "--max-num-seqs": 256, "--tensor-parallel-size": 2}
    )
    override = parse_engine_args("-tp=4,--max-model-len=1024,--enforce-eager")
    merged = merge_engine_args(base, override)
    assert list(merged.items()) == [
        ("--max-model-len", 1024),
        ("--max-num-seqs", 256),
        ("--tensor-parallel-size", 4),
        ("--enforce-eager", True),
    ]


def test_sglang_aliases_and_no_dash_o() -> None:
    assert parse_engine_args("--tp=4,--pp-size=2,--ep=8", "sglang") == {
        "--tensor-parallel-size": 4,
        "--pipeline-parallel-size": 2,
        "--expert-parallel-size": 8,
    }
    with pytest.raises(ConfigError, match="only supported for vLLM"):
        parse_engine_args("-O3", "sglang")
    assert parse_engine_args("-O3", "sim") == {"--optimization-level": 3}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("--max-model-len=1\n#SBATCH --x", "newline or NUL"),
        ("--chat-template=a\x00b", "newline or NUL"),
        ({"--x": "a\rb"}, "newline or NUL"),
        ("--compilation-config={not json", "not valid JSON"),
        ("-zz=1", "long form"),
        ("max-model-len=2", "long form"),
        ("--bad;rm=1", "Invalid engine flag"),
        ({"--x y": 1}, "Invalid engine flag"),
        ("-O3=4", "optimization level once"),
        ({"--x": object()}, "Unsupported value"),
    ],
)
def test_rejected_input(source: str | dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_engine_args(source)


def test_shell_syntax_in_values_is_kept_inert() -> None:
    hostile = "--chat-template=$(touch /tmp/pwned); `id` \"q\" 'x',--seed=1"
    parsed = parse_engine_args(hostile)
    assert parsed["--chat-template"] == "$(touch /tmp/pwned); `id` \"q\" 'x'"
    assert to_argv(parsed)[:2] == ["--chat-template", "$(touch /tmp/pwned); `id` \"q\" 'x'"]


def test_top_level_split_respects_brackets_and_quotes() -> None:
    assert split_top_level('a={"x": [1, 2]},b="c,d",e') == ['a={"x": [1, 2]}', 'b="c,d"', "e"]
