"""Run a flow in-process with a live progress bar, then print its id, UI link and summary."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vec_inf_flows import progress
from vec_inf_flows.cli.render import key_value_table


def run_with_progress(flow_fn: Any, params: dict[str, Any], console: Console) -> tuple[Any, str]:
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def show(description: str, done: int, total: int | None) -> None:
        if description not in tasks:
            tasks[description] = bars.add_task(description, total=total)
        bars.update(tasks[description], completed=done, total=total)

    with bars, progress.listening(show):
        state = flow_fn(**params, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    return state, run_id


def report(console: Console, flow: str, state: Any, run_id: str, json_mode: bool) -> int:
    from vec_inf_flows.cli.run import _ui_url

    failed = not state.is_completed()
    result: Any = None
    error: str | None = None
    try:
        result = state.result(raise_on_failure=True)
    except BaseException as exc:
        error = " ".join(str(exc).split()) or type(exc).__name__
    url = _ui_url(run_id)
    if json_mode:
        print(
            json.dumps(
                {
                    "flow": flow,
                    "flow_run_id": run_id,
                    "state": state.type.value,
                    "ui_url": url,
                    "result": result,
                    "error": error,
                },
                default=str,
            )
        )
        return 1 if failed else 0
    console.print(f"Flow run {run_id}: {state.type.value}")
    if url:
        console.print(f"View it at {url}")
    if isinstance(result, dict):
        console.print(key_value_table("Summary", _summary_rows(result)))
    elif result is not None:
        console.print(result)
    if error:
        console.print(f"[red]Error: {error}[/]")
    return 1 if failed else 0


def _summary_rows(result: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in result.items():
        if isinstance(value, dict):
            rows += _summary_rows(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            rows.append((f"{prefix}{key}", json.dumps(value, default=str)[:200]))
        else:
            rows.append((f"{prefix}{key}", str(value)))
    return rows
