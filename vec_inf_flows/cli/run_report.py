"""Run a flow in-process with a live progress bar, then print its id, UI link and summary."""

from __future__ import annotations

import json
from typing import Any

from vec_inf_flows import progress
from vec_inf_flows.cli.render import key_value_table


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


def report(console: Any, flow: str, state: Any, run_id: str, json_mode: bool) -> int:
    from vec_inf_flows.cli.run import ui_url

    failed = not state.is_completed()
    result: Any = None
    error: str | None = None
    try:
        result = state.result(raise_on_failure=True)
    except BaseException as exc:
        error = " ".join(str(exc).split()) or type(exc).__name__
    url = ui_url(run_id)
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
    for table in summary_tables(result):
        console.print(table)
    if error:
        console.print(f"[red]Error: {error}[/]")
    return 1 if failed else 0


def summary_tables(result: Any) -> list[Any]:
    """People-sized tables of a flow's result: the server, the workload, the server's metrics."""
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return [_rows_table(result)]
    if not isinstance(result, dict):
        return [] if result is None else [key_value_table("Result", [("result", str(result))])]
    tables = []
    server = [(key, str(result[key])) for key in _SERVER_KEYS if result.get(key) is not None]
    if server:
        tables.append(key_value_table("Server", server))
    workload = result.get("workload")
    if isinstance(workload, dict):
        tables.append(key_value_table("Workload", _workload_rows(workload)))
    metrics = result.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("metrics"), dict):
        from vec_inf_flows.server.metrics import rows_of_dump

        rows = rows_of_dump(metrics)
        if rows is not None:
            tables.append(key_value_table("Metric", rows))
    rest = {k: v for k, v in result.items() if k not in (*_SERVER_KEYS, "workload", "metrics")}
    if rest:
        tables.append(key_value_table("Result", [(k, _short(v)) for k, v in rest.items()]))
    return tables


_SERVER_KEYS = ("model_name", "job_id", "base_url", "launched")


def _workload_rows(workload: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in workload.items():
        if isinstance(value, dict) and {"p50", "p95", "p99"} <= set(value):
            rows.append(
                (
                    key,
                    " / ".join(f"{value[q]:.3f}" for q in ("p50", "p95", "p99"))
                    + "  (p50 / p95 / p99)",
                )
            )
        elif isinstance(value, float):
            rows.append((key, f"{value:.2f}"))
        else:
            rows.append((key, _short(value)))
    return rows


def _rows_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_short(row.get(column, "")) for column in columns))
    return table


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
