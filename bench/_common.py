"""Shared by the anchor comparisons: the anchor's own venv, timed subprocesses, a plain table.

The anchor (``vec-inf`` 0.9.0 from PyPI) lives in ``bench/.venv-anchor`` (git-ignored), created
on first use, so its code never enters the repository and its dependencies never meet ours.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR_VERSION = "0.9.0"
ANCHOR_VENV = Path(__file__).resolve().parent / ".venv-anchor"
ANCHOR_CLI = ANCHOR_VENV / "bin" / "vec-inf"
OURS_CLI = Path(sys.executable).parent / "vec-inf-flows"


def ensure_anchor() -> Path:
    """The anchor's ``vec-inf`` executable, installing it into its own venv when missing."""
    if not _anchor_installed():
        print(f"installing vec-inf=={ANCHOR_VERSION} into {ANCHOR_VENV} (first run only) ...")
        base_python = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base_python, "-m", "venv", "--clear", str(ANCHOR_VENV)], check=True)
        pip = [str(ANCHOR_VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", f"vec-inf=={ANCHOR_VERSION}"], check=True)
        if not _anchor_installed():
            raise SystemExit(f"vec-inf {ANCHOR_VERSION} did not install into {ANCHOR_VENV}")
    return ANCHOR_CLI


def _anchor_installed() -> bool:
    if not ANCHOR_CLI.exists():
        return False
    probe = [
        str(ANCHOR_VENV / "bin" / "python"),
        "-c",
        "import importlib.metadata as m; print(m.version('vec-inf'))",
    ]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == ANCHOR_VERSION


def ensure_ours() -> Path:
    if not OURS_CLI.exists():
        raise SystemExit(f"{OURS_CLI} is missing: run this with the project's .venv/bin/python")
    return OURS_CLI


def bench_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """One environment for both tools: a throwaway HOME (nothing lands in the user's), fixed
    terminal width, no colour, so neither side pays for something the other skips."""
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(home),
            "COLUMNS": "120",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "VEC_INF_FLOWS_HOME": str(home / ".vec-inf-flows"),
        }
    )
    env.update(extra or {})
    return env


@dataclass
class Run:
    """One timed process: wall seconds, exit code, and its output for a sanity check."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def timed_run(argv: Sequence[str], env: Mapping[str, str], timeout: float = 120.0) -> Run:
    started = time.perf_counter()
    result = subprocess.run(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - started
    return Run(seconds, result.returncode, result.stdout, result.stderr)


@dataclass
class Samples:
    """Wall times of one measured thing, in seconds."""

    values: list[float] = field(default_factory=list)
    failures: int = 0

    def add(self, run: Run) -> None:
        self.values.append(run.seconds)
        if run.returncode != 0:
            self.failures += 1

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def minimum(self) -> float:
        return min(self.values) if self.values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def ratio(ours: float, anchor: float) -> str:
    return f"{ours / anchor:6.2f}" if anchor > 0 else "   n/a"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def aligned(row: Sequence[str]) -> str:
        first, *rest = [str(cell).strip() for cell in row]
        cells = [f"{first:<{widths[0]}}"]
        cells += [f"{cell:>{width}}" for cell, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(cells)

    print(aligned(headers))
    print("-" * len(aligned(headers)))
    for row in rows:
        print(aligned(row))


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
