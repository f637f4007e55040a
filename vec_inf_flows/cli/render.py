"""Rich tables laid out like the vec-inf user guide's, and JSON for ``--json-mode``.

rich is imported when a table is built, so ``--json-mode`` never pays for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


from vec_inf_flows.models import (
    BatchLaunchResponse,
    LaunchResponse,
    ServerStatus,
    StatusResponse,
)

_STATUS_STYLE = {
    ServerStatus.READY: "green",
    ServerStatus.LAUNCHING: "yellow",
    ServerStatus.PENDING: "cyan",
    ServerStatus.FAILED: "red",
    ServerStatus.SHUTDOWN: "dim",
}

_TYPE_STYLE = {
    "LLM": "cyan",
    "VLM": "bright_blue",
    "Text_Embedding": "purple",
    "Reward_Modeling": "magenta",
}


def print_json(console: Any, payload: Any) -> None:
    """JSON always goes to stdout as one document; people-facing text goes to the console."""
    print(json.dumps(payload, default=str), flush=True)


def new_table(**options: Any) -> Table:
    from rich.table import Table

    return Table(show_header=True, header_style="bold", **options)


def key_value_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    table = new_table()
    table.add_column(title, style="bold")
    table.add_column("Value")
    for key, value in rows:
        table.add_row(key, value)
    return table


def _engine_label(engine: str) -> str:
    return {"vllm": "vLLM", "sglang": "SGLang", "sim": "Simulator (vLLM interface)"}.get(
        engine, engine
    )


def _engine_arg_rows(
    engine: str, args: Mapping[str, Any], indent: str = "  "
) -> list[tuple[str, str]]:
    if not args:
        return []
    title = {"sglang": "SGLang Arguments:"}.get(engine, "vLLM Arguments:")
    rows = [(title, "")]
    for flag, value in args.items():
        shown = "" if value is True else ("false" if value is False else _compact(value))
        rows.append((f"{indent}{flag}:", shown))
    return rows


def _compact(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def launch_rows(response: LaunchResponse) -> list[tuple[str, str]]:
    config = response.config
    resources: Mapping[str, Any] = config.get("resources", {})
    rows = [
        ("Slurm Job ID", response.job_id),
        ("Job Name", response.job_name),
        ("Model Name", response.model_name),
        ("Model Type", str(config.get("model_type", ""))),
        ("Vocabulary Size", str(config.get("vocab_size", ""))),
    ]
    optional = [
        ("Account", resources.get("account")),
        ("Working Directory", resources.get("work_dir")),
        ("Partition", resources.get("partition")),
        ("QoS", resources.get("qos")),
        ("Resource Type", resources.get("resource_type")),
    ]
    rows += [(key, str(value)) for key, value in optional if value]
    rows += [
        ("Time Limit", str(resources.get("time", ""))),
        ("Num Nodes", str(resources.get("num_nodes", ""))),
    ]
    if int(resources.get("num_nodes") or 1) > 1:
        rows.append(("Multi-Node Mode", str(config.get("multi_node_mode", ""))))
    rows += [
        ("GPUs/Node", str(resources.get("gpus_per_node", ""))),
        ("CPUs/Task", str(resources.get("cpus_per_task", ""))),
        ("Memory/Node", str(resources.get("mem_per_node") or "default")),
    ]
    if config.get("venv"):
        rows.append(("Virtual Environment", str(config["venv"])))
    container = config.get("container")
    if container:
        rows.append(("Container", f"{container.get('runtime')} {container.get('image')}"))
    rows += [
        ("Model Weights Directory", str(config.get("model_path", ""))),
        ("Log Directory", response.job_dir),
        ("Inference Engine", _engine_label(str(config.get("engine", "")))),
    ]
    rows += _engine_arg_rows(str(config.get("engine", "")), config.get("engine_args", {}))
    env = {**config.get("env", {}), **config.get("secret_env", {})}
    if env:
        rows.append(("Environment:", ""))
        rows += [(f"  {name}:", str(value)) for name, value in env.items()]
    return rows


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
    style = _STATUS_STYLE.get(status.server_status, "")
    rows = [
        ("Job ID", status.job_id),
        ("Model Name", status.model_name),
        ("Model Status", f"[{style}]{status.server_status.value}[/]"),
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
    table = new_table()
    for column in ("Job ID", "Model Name", "Status", "Base URL", "Reason"):
        table.add_column(column)
    for status in statuses:
        style = _STATUS_STYLE.get(status.server_status, "")
        table.add_row(
            status.job_id,
            status.model_name,
            f"[{style}]{status.server_status.value}[/]",
            status.base_url or "UNAVAILABLE",
            status.pending_reason or status.failed_reason or status.detail or "",
        )
    return table


def models_table(models: Sequence[Any]) -> Table:
    table = new_table()
    table.add_column("Model", no_wrap=True)
    for column in ("Family", "Type"):
        table.add_column(column, overflow="fold")
    for info in models:
        style = _TYPE_STYLE.get(info.model_type, "")
        table.add_row(f"[{style}]{info.name}[/]", info.family, info.model_type)
    return table


def model_config_rows(name: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("model_name", name)]
    engine = str(config.get("engine") or "vllm")
    for key, value in config.items():
        skip = ("model_name", "vllm_args", "sglang_args", "env")
        if key in skip or value in (None, "", {}, []):
            continue
        rows.append((key, _compact(value)))
    args = config.get("sglang_args" if engine == "sglang" else "vllm_args") or {}
    rows += _engine_arg_rows(engine, args)
    return rows


def metrics_table(rows: Sequence[tuple[str, str]], title: str = "Metric") -> Table:
    return key_value_table(title, rows)
