"""The plain commands import only what they need: no pydantic, YAML, rich or httpx on the
paths a user types most (their speed is measured in bench/cli_latency.py and
bench/status_scaling.py; here we check what makes it possible)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vec_inf_flows.cli.boxtable import BoxTable

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "yaml", "rich", "httpx", "prefect")


def imported(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vec_inf_flows.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result, {name.split(".")[0] for name in modules}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {**os.environ, "HOME": str(tmp_path), "VEC_INF_FLOWS_HOME": str(tmp_path / "s")}
    for name in ("VEC_INF_CONFIG", "VEC_INF_MODEL_CONFIG", "VEC_INF_CONFIG_DIR"):
        environ.pop(name, None)
    return environ


@pytest.mark.parametrize(
    "args",
    [["--help"], ["list"], ["list", "Meta-Llama-3.1-8B-Instruct"], ["list", "--json-mode"]],
)
def test_help_and_list_import_nothing_heavy_once_the_listing_is_built(
    env: dict[str, str], args: list[str]
) -> None:
    first, _ = imported(["list", "--json-mode"], env)  # builds the precompiled listing
    assert first.returncode == 0, first.stderr
    result, modules = imported(args, env)
    assert result.returncode == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.slurm
def test_status_imports_nothing_heavy(env: dict[str, str]) -> None:
    result, modules = imported(["status", "--json-mode"], {**env, "VEC_INF_BACKEND": "slurm"})
    assert result.returncode == 0, result.stderr
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_box_table_looks_like_richs_and_wraps_to_the_width() -> None:
    table = BoxTable(["Job Status", "Value"])
    table.add_row(("Job ID", "bold"), "123")
    table.add_row(("Detail", "bold"), "waiting for the server address to appear")
    assert table.render(width=80).splitlines() == [
        "┏━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ Job Status ┃ Value                                    ┃",
        "┡━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ Job ID     │ 123                                      │",
        "│ Detail     │ waiting for the server address to appear │",
        "└────────────┴──────────────────────────────────────────┘",
    ]
    narrow = table.render(width=40).splitlines()
    assert max(len(line) for line in narrow) <= 40
    assert any("waiting for the" in line for line in narrow)
    colored = table.render(width=80, color=True)
    assert "\x1b[1mJob ID    \x1b[0m" in colored


def test_box_table_prints_through_a_rich_console_too() -> None:
    from rich.console import Console

    table = BoxTable(["Metric", "Value"])
    table.add_row("Requests Running", "3 reqs")
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(table)
    assert "│ Requests Running │ 3 reqs │" in out.getvalue()
