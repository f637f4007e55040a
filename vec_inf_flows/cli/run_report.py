"""Run a flow in-process with a live progress bar, then print its id, UI link and summary.

The summary tables are ``presentation`` tables of the flow's typed result: the same rows the
run's artifacts hold. A run that FAILED for too few answers still has its result (carried by
``WorkloadFailed``), so its tables are printed with the reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vec_inf_flows import progress
from vec_inf_flows.cli.render import show as show_table
from vec_inf_flows.cli.render import terminal_table


def ui_url(flow_run_id: str) -> str | None:
    api = os.environ.get("PREFECT_UI_URL") or os.environ.get("PREFECT_API_URL")
    if not api:
        return None
    base = api.rstrip("/").removesuffix("/api")
    return f"{base}/runs/flow-run/{flow_run_id}"


def run_with_progress(flow_fn: Any, params: dict[str, Any], console: Any) -> tuple[Any, str]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=getattr(console, "real", console),
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


def outcome(state: Any) -> tuple[Any, str | None]:
    """The run's typed result (None if it has none) and, if it failed, why, in one line."""
    from vec_inf_flows.results import WorkloadFailed

    try:
        value = state.result(raise_on_failure=False)
    except BaseException as error:  # a result that cannot be read back
        value = error
    if isinstance(value, WorkloadFailed):
        return value.result, str(value)
    if isinstance(value, BaseException):
        return None, " ".join(str(value).split()) or type(value).__name__
    if not state.is_completed():
        return value, state.message or state.type.value
    return value, None


def jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def report(console: Any, flow: str, state: Any, run_id: str, json_mode: bool) -> int:
    from vec_inf_flows.presentation import result_tables

    failed = not state.is_completed()
    result, error = outcome(state)
    url = ui_url(run_id)
    if json_mode:
        payload = {
            "flow": flow,
            "flow_run_id": run_id,
            "state": state.type.value,
            "ui_url": url,
            "result": jsonable(result),
            "error": error,
        }
        print(json.dumps(payload, default=str))
        return 1 if failed else 0
    console.print(f"Flow run {run_id}: {state.type.value}")
    if url:
        console.print(f"View it at {url}")
    for table in result_tables(result):
        show_table(terminal_table(table))
    if error:
        console.print(f"[red]Error: {error}[/]", highlight=False)
    return 1 if failed else 0
