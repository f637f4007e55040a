"""Tables laid out like the vec-inf user guide's, and JSON for ``--json-mode``.

The tables are ``BoxTable``s (drawn like rich's, without importing it): ``show`` prints one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vec_inf_flows.cli.boxtable import BoxTable, Cell, show
from vec_inf_flows.server_status import ServerStatus, StatusResponse

if TYPE_CHECKING:
    from vec_inf_flows.models import BatchLaunchResponse, LaunchResponse

from vec_inf_flows.presentation import Table as Rows
from vec_inf_flows.presentation import compact, engine_arg_rows, launch_rows

Table = BoxTable
__all__ = ["Table", "show"]

_STATUS_STYLE = {
    ServerStatus.READY: "green",
    ServerStatus.LAUNCHING: "yellow",
    ServerStatus.PENDING: "cyan",
    ServerStatus.FAILED: "red",
    ServerStatus.SHUTDOWN: "dim",
    ServerStatus.STOPPING: "yellow",
    ServerStatus.FOREIGN: "magenta",
}

_TYPE_STYLE = {
    "LLM": "cyan",
    "VLM": "bright_blue",
    "Text_Embedding": "purple",
    "Reward_Modeling": "magenta",
    "OCR": "green",
    "Audio": "yellow",
}


def print_json(console: Any, payload: Any) -> None:
    """JSON always goes to stdout as one document; people-facing text goes to the console."""
    print(json.dumps(payload, default=str), flush=True)


def key_value_table(title: str, rows: Iterable[tuple[str, Cell]]) -> Table:
    table = BoxTable([title, "Value"])
    for key, value in rows:
        table.add_row((key, "bold"), value)
    return table


def terminal_table(rows: Rows) -> Table:
    """A presentation table (the same rows the artifacts and the README show) for the terminal."""
    if len(rows.columns) == 2 and rows.columns[0] == rows.title:
        return key_value_table(rows.title, [(key, value) for key, value in rows.rows])
    table = BoxTable(list(rows.columns))
    for row in rows.rows:
        table.add_row(*row)
    return table


def launch_table(response: LaunchResponse) -> Table:
    return key_value_table("Job Config", launch_rows(response))


def batch_table(response: BatchLaunchResponse) -> Table:
    rows: list[tuple[str, str]] = [
        ("Slurm Job ID", response.job_id),
        ("Slurm Job Name", response.job_name),
    ]
    for server in response.servers:
        resources: Mapping[str, Any] = server.config.get("resources", {})
        rows += [
            ("Model Name", server.model_name),
            ("Job ID", f"  {server.job_id}"),
            ("Partition", f"  {resources.get('partition') or 'default'}"),
            ("QoS", f"  {resources.get('qos') or 'default'}"),
            ("Time Limit", f"  {resources.get('time', '')}"),
            ("Num Nodes", f"  {resources.get('num_nodes', '')}"),
            ("GPUs/Node", f"  {resources.get('gpus_per_node', '')}"),
            ("CPUs/Task", f"  {resources.get('cpus_per_task', '')}"),
            ("Memory/Node", f"  {resources.get('mem_per_node') or 'default'}"),
            ("Log Directory", f"  {server.job_dir}"),
        ]
    return key_value_table("Job Config", rows)


def status_table(status: StatusResponse) -> Table:
    state = status.server_status
    rows: list[tuple[str, Cell]] = [
        ("Job ID", status.job_id),
        ("Model Name", status.model_name),
        ("Model Status", (state.value, _STATUS_STYLE.get(state, ""))),
    ]
    if status.pending_reason:
        rows.append(("Pending Reason", status.pending_reason))
    if status.failed_reason:
        rows.append(("Failed Reason", status.failed_reason))
    rows.append(("Base URL", status.base_url or "UNAVAILABLE"))
    if status.detail:
        rows.append(("Detail", status.detail))
    if status.slurm_state:
        rows.append(("Slurm State", status.slurm_state))
    return key_value_table("Job Status", rows)


def status_list_table(statuses: Sequence[StatusResponse]) -> Table:
    table = BoxTable(["Job ID", "Model Name", "Status", "Base URL", "Reason"])
    for status in statuses:
        style = _STATUS_STYLE.get(status.server_status, "")
        table.add_row(
            status.job_id,
            status.model_name,
            (status.server_status.value, style),
            status.base_url or "UNAVAILABLE",
            status.pending_reason or status.failed_reason or status.detail or "",
        )
    return table


def models_table(models: Sequence[Any]) -> Table:
    table = BoxTable(["Model", "Family", "Type"], no_wrap=[True, False, False])
    for info in models:
        style = _TYPE_STYLE.get(info.model_type, "white")
        table.add_row((info.name, style), info.family, info.model_type)
    return table


def model_config_rows(name: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("model_name", name)]
    engine = str(config.get("engine") or "vllm")
    for key, value in config.items():
        skip = ("model_name", "vllm_args", "sglang_args", "env")
        if key in skip or value in (None, "", {}, []):
            continue
        rows.append((key, compact(value)))
    args = config.get("sglang_args" if engine == "sglang" else "vllm_args") or {}
    rows += engine_arg_rows(engine, args)
    return rows


def metrics_table(rows: Sequence[tuple[str, str]], title: str = "Metric") -> Table:
    return key_value_table(title, rows)
