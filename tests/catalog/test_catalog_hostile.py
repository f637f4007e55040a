"""Hostile config files: alias bombs are refused before they expand; errors quote a prefix only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vec_inf_flows.catalog.files import read_catalog_file
from vec_inf_flows.catalog.loader import load_catalog
from vec_inf_flows.catalog.yaml_load import parse_yaml
from vec_inf_flows.errors import ConfigError, quote

REPO = Path(__file__).resolve().parents[2]


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic bomb: each level is ``width`` aliases of the one before (9**9 'lol's)."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines += ["models:", "  bomb:", f"    env: *a{levels - 1}"]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_in_one_line(
    write_yaml: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(billion_laughs(), "bomb.yaml")
    monkeypatch.setenv("VEC_INF_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_catalog()
    message = str(caught.value)
    assert message.startswith(f"{path}: refused: its aliases expand it past")
    assert "\n" not in message


def test_alias_bomb_from_the_cli_exits_1_without_a_traceback(tmp_path: Path) -> None:
    """The user's path: ``VEC_INF_CONFIG=bomb.yaml vec-inf-flows list`` (a timeout guards a
    regression that would expand it; speed and memory are measured in bench/hostile_config.py)."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    env = {**os.environ, "VEC_INF_CONFIG": str(bomb), "HOME": str(tmp_path)}
    env["VEC_INF_FLOWS_HOME"] = str(tmp_path / "state")
    result = subprocess.run(
        [sys.executable, "-m", "vec_inf_flows.cli.main", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and "Traceback" not in result.stderr


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="refers to a node that contains it"):
        parse_yaml("a: &a [*a]\n", "loop.yaml")


def test_honest_anchors_still_work() -> None:
    text = (
        "shared: &args {--max-model-len: 4096, --max-num-seqs: 8}\n"
        "models:\n"
        "  one: {vllm_args: *args}\n"
        "  two: {vllm_args: *args}\n"
    )
    document = parse_yaml(text, "anchors.yaml")
    assert isinstance(document, dict)
    assert document["models"]["two"]["vllm_args"] == {"--max-model-len": 4096, "--max-num-seqs": 8}


def test_a_huge_value_is_quoted_by_a_short_prefix(
    write_yaml: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "x" * 10_000_000
    path = write_yaml(
        f"models:\n  m1:\n    model_family: fam\n    model_type: LLM\n    gpus_per_node: 1\n"
        f"    vocab_size: 1\n    time: '{huge}'\n",
        "huge.yaml",
    )
    monkeypatch.setenv("VEC_INF_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_catalog()
    message = str(caught.value)
    assert len(message) < 300
    assert "(10000000 characters)" in message and "time" in message


def test_a_huge_unknown_key_is_quoted_by_a_short_prefix(
    write_yaml: Callable[[str, str], Path],
) -> None:
    key = "k" * 1000
    path = write_yaml(f"defaults:\n  ? {key}\n  : 1\n", "key.yaml")
    (note,) = read_catalog_file(path).notes
    assert len(note) < 400 and "(1000 characters)" in note


def test_quote_keeps_short_values_whole() -> None:
    assert quote("a40") == "'a40'"
    assert quote("y" * 100) == f"{'y' * 60!r}... (100 characters)"
