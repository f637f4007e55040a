"""Reading what lm-eval leaves behind: its results JSON, and the last line of a failure."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from vec_inf_flows.evals.models import LmEvalScore, Metric, TaskResult

# The number an evaluation row shows for a task, in this order: multiple choice reports acc
# (and acc_norm), generation exact_match; a task with neither shows its first metric.
PRIMARY_METRICS = ("acc", "exact_match")
_NOT_METRICS = {"alias", "name", "sample_len", "samples"}
# The last line of a Python traceback: "SomeError: message" (dotted names allowed).
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):?\s*(.*)$")


def results_file(output_dir: Path) -> Path | None:
    """lm-eval writes ``<output>/<model>/results_<time>.json``; the newest one."""
    found = sorted(output_dir.glob("**/results_*.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _metrics(entry: dict[str, Any]) -> list[Metric]:
    """``"exact_match,last_word": 0.8`` and ``"exact_match_stderr,last_word": 0.1`` -> one."""
    values: dict[tuple[str, str], float | None] = {}
    errors: dict[tuple[str, str], float | None] = {}
    for key, value in entry.items():
        if key in _NOT_METRICS or "," not in key:
            continue
        name, filter_name = key.split(",", 1)
        if name.endswith("_stderr"):
            errors[(name.removesuffix("_stderr"), filter_name)] = _number(value)
        else:
            values[(name, filter_name)] = _number(value)
    return [
        Metric(name=n, filter=f, value=v, stderr=errors.get((n, f))) for (n, f), v in values.items()
    ]


def parse_results(path: Path) -> dict[str, TaskResult]:
    """Every task (and group) the file has scores for, by name."""
    data = json.loads(path.read_text())
    samples = data.get("n-samples") or {}
    out: dict[str, TaskResult] = {}
    for task, entry in (data.get("results") or {}).items():
        if not isinstance(entry, dict):
            continue
        counts = samples.get(task) or {}
        n = counts.get("effective", entry.get("sample_len"))
        out[task] = TaskResult(
            task=task,
            ok=True,
            metrics=_metrics(entry),
            n_samples=int(n) if isinstance(n, int) else None,
            results_file=path,
        )
    for group, members in (data.get("group_subtasks") or {}).items():
        if group not in out and all(m in out for m in members):
            out[group] = TaskResult(task=group, ok=True, results_file=path)
    return out


def error_line(stderr: str, returncode: int) -> str:
    """The exception lm-eval died of, in one line (else its exit code)."""
    for line in reversed(stderr.strip().splitlines()):
        match = _EXCEPTION_LINE.match(line.strip())
        if match:
            kind, message = match.groups()
            short = kind.rsplit(".", 1)[-1]
            return f"{short}: {message}".strip().rstrip(":") if message else short
    tail = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    detail = f": {tail}" if tail else ""
    return f"lm-eval exited with code {returncode}{detail}"[:500]


def primary_score(result: TaskResult, wanted: str | None = None) -> LmEvalScore:
    """The metric a row is scored by: ``wanted`` (``NAME`` or ``NAME,FILTER``) where the task
    reports it, else the task's primary one (``PRIMARY_METRICS``, under the first filter that
    has it). A task without the wanted metric keeps its primary one, and the row names it."""
    wanted_name, _, wanted_filter = (wanted or "").partition(",")
    asked = [
        m
        for m in result.metrics
        if m.name == wanted_name and (not wanted_filter or m.filter == wanted_filter)
    ]
    ranked = [m for name in PRIMARY_METRICS for m in result.metrics if m.name == name]
    candidates = asked or ranked or result.metrics
    chosen = candidates[0] if candidates else None
    return LmEvalScore(
        task=result.task,
        metric=chosen.name if chosen else None,
        filter=chosen.filter if chosen else "none",
        value=chosen.value if chosen else None,
        stderr=chosen.stderr if chosen else None,
        n_samples=result.n_samples,
        results_file=result.results_file,
    )
