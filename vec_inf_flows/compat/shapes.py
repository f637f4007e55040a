"""vec-inf 0.9.0's JSON shapes, built from ours: what its scripts read, key for key.

``--json-mode`` prints ours with these keys added (a superset), and the compatibility client
returns them where vec-inf returned a dict. Values follow vec-inf's types: its launch params
are strings except ``engine_args`` and ``env``; a status without a server says
``"UNAVAILABLE"``; metrics are a flat ``{name: float}`` under vec-inf's names. Secrets stay
redacted, unlike vec-inf's.

No pydantic here: ``status --json-mode`` uses it on the CLI's fast path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vec_inf_flows.models import BatchLaunchResponse, LaunchResponse
    from vec_inf_flows.server.metrics import MetricsSnapshot, ServerMetrics
    from vec_inf_flows.server_status import StatusResponse

UNAVAILABLE = "UNAVAILABLE"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RESOURCE_KEYS = ("gpus_per_node", "num_nodes", "cpus_per_task", "mem_per_node", "time")
_OPTIONAL_RESOURCE_KEYS = ("partition", "qos", "account", "work_dir", "resource_type")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def launch_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """vec-inf's launch ``params`` from our job record (``LaunchResponse.config``)."""
    resources: Mapping[str, Any] = config.get("resources") or {}
    family = _text(config.get("model_family"))
    model_path = _text(config.get("model_path"))
    local = os.path.isabs(model_path)
    container: Mapping[str, Any] = config.get("container") or {}
    params: dict[str, Any] = {
        "model_name": _text(config.get("model_name")),
        "model_family": family,
    }
    if config.get("model_variant"):
        params["model_variant"] = _text(config["model_variant"])
    params["model_type"] = _text(config.get("model_type"))
    params.update({key: _text(resources.get(key)) for key in _RESOURCE_KEYS})
    params["vocab_size"] = _text(config.get("vocab_size"))
    params.update(
        {
            "resource_type": _text(resources.get("resource_type")),
            "exclude": _text(resources.get("exclude")),
            "nodelist": _text(resources.get("nodelist")),
            "bind": ",".join(container.get("binds") or ()),
            "venv": _text(container.get("image") or config.get("venv")),
            "log_dir": os.path.join(_text(config.get("log_dir")), family),
            "model_weights_parent_dir": os.path.dirname(model_path) if local else "",
            "engine": _text(config.get("engine")),
            "env": {**(config.get("env") or {}), **(config.get("secret_env") or {})},
            "engine_args": dict(config.get("engine_args") or {}),
        }
    )
    for key in _OPTIONAL_RESOURCE_KEYS[:-1]:
        if resources.get(key) or key in ("account", "work_dir"):
            params[key] = _text(resources.get(key))
    params["gres"] = _gres(resources)
    params["src_dir"] = _PACKAGE_DIR
    job_dir = _text(config.get("job_dir"))
    stem = os.path.basename(job_dir)
    params.update(
        {
            "out_file": _text(config.get("out_file")),
            "err_file": _text(config.get("err_file")),
            "json_file": os.path.join(job_dir, f"{stem}.json") if job_dir else "",
            "slurm_job_id": _text(config.get("slurm_job_id") or config.get("job_id")),
        }
    )
    if not local and model_path:
        params["hf_model"] = model_path
    return params


def _gres(resources: Mapping[str, Any]) -> str:
    gpus = resources.get("gpus_per_node") or 0
    if not gpus:
        return ""
    kind = resources.get("resource_type")
    return f"gpu:{kind}:{gpus}" if kind else f"gpu:{gpus}"


def launch_json(response: LaunchResponse) -> dict[str, Any]:
    """``launch --json-mode``: ours (job_id, config, ...) plus vec-inf's flat params."""
    return {**response.model_dump(), **launch_params(response.config)}


def batch_params(response: BatchLaunchResponse) -> dict[str, Any]:
    """vec-inf's batch ``params``: shared settings at the top, one entry per model."""
    models: dict[str, Any] = {}
    for offset, server in enumerate(response.servers):
        entry = launch_params(server.config)
        entry["het_group_id"] = offset
        entry["slurm_job_id"] = server.job_id
        models[server.model_name] = entry
    first: dict[str, Any] = next(iter(models.values()), {})
    leader_dir = os.path.dirname(first.get("out_file", ""))
    return {
        "slurm_job_name": response.job_name,
        "src_dir": _PACKAGE_DIR,
        "account": first.get("account", ""),
        "work_dir": first.get("work_dir", ""),
        "out_file": first.get("out_file", ""),
        "err_file": first.get("err_file", ""),
        "venv": first.get("venv", ""),
        "log_dir": os.path.dirname(leader_dir) if leader_dir else "",
        "slurm_job_id": response.job_id,
        "models": models,
    }


def batch_json(response: BatchLaunchResponse) -> dict[str, Any]:
    """``batch-launch --json-mode``: ours (job_ids, servers) plus vec-inf's params."""
    return {**response.model_dump(), **batch_params(response)}


def status_fields(status: StatusResponse) -> dict[str, Any]:
    """vec-inf's status JSON: model_status, base_url ("UNAVAILABLE" without a server), and
    the pending / failed reason only when there is one."""
    fields: dict[str, Any] = {
        "model_name": status.model_name,
        "model_status": status.server_status.value,
        "base_url": status.base_url or UNAVAILABLE,
    }
    if status.pending_reason:
        fields["pending_reason"] = status.pending_reason
    if status.failed_reason:
        fields["failed_reason"] = status.failed_reason
    return fields


def status_json(status: StatusResponse) -> dict[str, Any]:
    """``status ID --json-mode``: ours plus vec-inf's keys (its base_url wins: a string)."""
    return {**status.model_dump(mode="json"), **status_fields(status)}


def status_list_json(statuses: Sequence[StatusResponse]) -> list[dict[str, Any]]:
    """``status --json-mode`` for many: each as ``status_json`` (vec-inf put the model name
    in ``job_id``; ours is the job id)."""
    return [status_json(status) for status in statuses]


def metrics_dict(metrics: ServerMetrics, snapshot: MetricsSnapshot | None) -> dict[str, float]:
    """vec-inf's ``MetricsResponse.metrics``: its names, only what the server exports.

    Throughputs are 0.0 until a second scrape gives a window (vec-inf's first value too).
    """
    values: dict[str, float | None] = {
        "prompt_tokens_per_sec": metrics.prompt_throughput or 0.0,
        "generation_tokens_per_sec": metrics.generation_throughput or 0.0,
        "requests_running": metrics.requests_running,
        "requests_waiting": metrics.requests_waiting,
        "requests_swapped": metrics.requests_swapped,
        "gpu_cache_usage": metrics.kv_cache_usage,
        "cpu_cache_usage": metrics.cpu_cache_usage,
        "gpu_prefix_cache_hit_rate": metrics.prefix_cache_hit_rate,
        "avg_request_latency": metrics.avg_request_latency,
        "total_prompt_tokens": metrics.total_prompt_tokens,
        "total_generation_tokens": metrics.total_generation_tokens,
        "successful_requests_total": metrics.successful_requests,
    }
    if snapshot is not None:
        for name, sample in (
            ("request_latency_sum", "e2e_request_latency_seconds_sum"),
            ("request_latency_count", "e2e_request_latency_seconds_count"),
            ("queue_time_sum", "request_queue_time_seconds_sum"),
        ):
            values[name] = snapshot.first((f"vllm:{sample}", f"sglang:{sample}"))
    return {name: float(value) for name, value in values.items() if value is not None}
