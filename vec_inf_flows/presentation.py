"""The rows people read, in one place: the CLI prints them as rich tables, the flows publish
them as Prefect table artifacts, and the README shows them, so all three always agree.

Pure: typed results in, ``Table`` (a title, column names, string cells) out. Nothing here
imports rich or Prefect, and the result models load only when a result is rendered, so the
plain CLI commands import this module for free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vec_inf_flows.models import LaunchResponse
    from vec_inf_flows.replicas.record import GroupRecord
    from vec_inf_flows.replicas.summary import ReplicaSummary
    from vec_inf_flows.results import CleanupRow, EvaluationRow, ServeResult, WorkloadSummary
    from vec_inf_flows.server.metrics import ServerMetrics
    from vec_inf_flows.workload.stats import LatencySummary

Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """A table to show: ``columns`` name the cells of every row."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def records(self) -> list[dict[str, str]]:
        """One mapping per row, as a Prefect table artifact takes them."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def key_value(title: str, rows: Rows) -> Table:
    """A two-column table whose first header is the title, as the vec-inf guide lays them out."""
    return Table(title, (title, "Value"), tuple(rows))


def grid(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    return Table(title, tuple(columns), tuple(tuple(row) for row in rows))


# ---------------------------------------------------------------------- launch
def engine_label(engine: str) -> str:
    return {"vllm": "vLLM", "sglang": "SGLang", "sim": "Simulator (vLLM interface)"}.get(
        engine, engine
    )


def compact(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def engine_arg_rows(engine: str, args: Mapping[str, Any], indent: str = "  ") -> Rows:
    if not args:
        return []
    title = {"sglang": "SGLang Arguments:"}.get(engine, "vLLM Arguments:")
    rows = [(title, "")]
    for flag, value in args.items():
        shown = "" if value is True else ("false" if value is False else compact(value))
        rows.append((f"{indent}{flag}:", shown))
    return rows


def launch_rows(response: LaunchResponse) -> Rows:
    """The guide's "Job Config" table of a launch (secrets shown as placeholders)."""
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
        ("Inference Engine", engine_label(str(config.get("engine", "")))),
    ]
    rows += engine_arg_rows(str(config.get("engine", "")), config.get("engine_args", {}))
    env = {**config.get("env", {}), **config.get("secret_env", {})}
    if env:
        rows.append(("Environment:", ""))
        rows += [(f"  {name}:", str(value)) for name, value in env.items()]
    return rows


# ---------------------------------------------------------------------- flow results
def _seconds(summary: LatencySummary) -> str:
    if summary.p50 is None:
        return "n/a"
    parts = (summary.p50, summary.p95, summary.p99)
    return " / ".join(f"{value:.3f}" for value in parts if value is not None) + " s"


def server_rows(result: ServeResult) -> Rows:
    server = result.server
    if result.replicas is not None:  # a replica group: its id, its one endpoint if any
        return [
            ("Model Name", server.model_name),
            ("Group ID", server.job_id),
            ("Endpoint", server.base_url or "none (no router)"),
            ("Max Concurrent Sequences", f"{server.max_concurrent_sequences} per replica"),
            ("Launched Here", "yes"),
        ]
    return [
        ("Model Name", server.model_name),
        ("Job ID", server.job_id),
        ("Base URL", server.base_url or "UNAVAILABLE"),
        ("Max Concurrent Sequences", str(server.max_concurrent_sequences)),
        ("Launched Here", "yes" if result.launched else "no (attached)"),
    ]


def group_launch_rows(record: GroupRecord) -> Rows:
    """A replica group as it was queued: its id, replicas and router."""
    replicas = [member.job_id for member in record.replica_members]
    rows = [
        ("Group ID", record.group_id),
        ("Model Name", record.model_name),
        ("Replicas", str(record.replicas)),
        ("Replica Job IDs", ", ".join(replicas) or "none yet (budget)"),
    ]
    router = record.router
    if router is not None:
        where = "local process" if router.backend == "local" else "Slurm job"
        rows.append(("Router", f"{where} {router.job_id}"))
    rows.append(("Group Directory", record.directory))
    return rows


def group_launch_table(record: GroupRecord) -> Table:
    return key_value("Replica Group", group_launch_rows(record))


def replica_rows(summary: ReplicaSummary) -> Rows:
    """What a replica group did in a run: jobs used, replacements, releases, the endpoint."""
    asked = f"{summary.replicas}" + (" at most (elastic)" if summary.elastic else "")
    rows = [
        ("Group ID", summary.group_id),
        ("Replicas", f"{asked}; {summary.peak} held at once at most"),
        ("Replica Job IDs", ", ".join(job.job_id for job in summary.jobs) or "none"),
        ("Replacements", str(len(summary.replacements))),
    ]
    rows += [
        (f"  {job.job_id} replaced {job.replaces}", _short(_lost_reason(summary, job.replaces)))
        for job in summary.replacements
    ]
    rows += [(f"  {job.job_id} lost", _short(job.detail or "")) for job in summary.lost]
    if summary.elastic:
        released = ", ".join(job.job_id for job in summary.released) or "none"
        rows.append(("Released (backlog drained)", released))
    never = [job.job_id for job in summary.jobs if job.outcome == "never ready"]
    if never:
        rows.append(("Never READY", ", ".join(never)))
    if summary.router_job_id is not None:
        rows.append(("Router Job ID", summary.router_job_id))
    if summary.endpoint is not None:
        rows.append(("Endpoint", str(summary.endpoint)))
    return rows


def _lost_reason(summary: ReplicaSummary, job_id: str | None) -> str:
    return next((job.detail or "" for job in summary.jobs if job.job_id == job_id), "")


def workload_rows(summary: WorkloadSummary) -> Rows:
    rows = [
        ("Dataset", summary.dataset),
        ("Output", summary.output),
        ("Requests", str(summary.total)),
        ("Succeeded", str(summary.ok)),
        ("Failed", str(summary.failed + summary.invalid)),
    ]
    rows += [(f"  {group.reason}", f"{group.count}") for group in summary.errors[:5]]
    if len(summary.errors) > 5:
        rows.append(("  (other reasons)", str(sum(g.count for g in summary.errors[5:]))))
    rows += [
        ("Skipped (done before)", str(summary.skipped)),
        ("Retries", str(summary.retries)),
        ("Task Runs (chunks)", str(summary.chunks)),
        ("Prompt Tokens", str(summary.prompt_tokens)),
        ("Completion Tokens", str(summary.completion_tokens)),
        ("Elapsed", f"{summary.elapsed_s:.2f} s"),
        ("Requests/s", f"{summary.requests_per_s:.2f}"),
        ("Completion Tokens/s", f"{summary.completion_tokens_per_s:.2f}"),
        ("Latency p50 / p95 / p99", _seconds(summary.latency_s)),
    ]
    if summary.ttft_s.p50 is not None:
        rows.append(("TTFT p50 / p95 / p99", _seconds(summary.ttft_s)))
    if summary.relaunches:
        rows.append(("Relaunches", str(summary.relaunches)))
    if summary.score is not None:
        rows.append(("Score", f"{summary.score:.3f} ({summary.scorer}, {summary.scored} scored)"))
    return rows


def metrics_table(metrics: ServerMetrics, title: str = "Metric") -> Table:
    from vec_inf_flows.server.metrics import metrics_rows

    return key_value(title, metrics_rows(metrics))


def serve_tables(result: ServeResult) -> list[Table]:
    """Server, workload and metrics of one server's run, as ``run`` prints them."""
    tables = [key_value("Server", server_rows(result))]
    if result.replicas is not None:
        tables.append(key_value("Replicas", replica_rows(result.replicas)))
    if result.workload is not None:
        tables.append(key_value("Workload", workload_rows(result.workload)))
    if result.custom:
        tables.append(key_value("Result", [(k, _short(v)) for k, v in result.custom.items()]))
    if result.metrics is not None:
        tables.append(metrics_table(result.metrics))
    elif result.metrics_error:
        tables.append(key_value("Metric", [("unavailable", result.metrics_error)]))
    return tables


EVALUATION_COLUMNS = (
    "Model", "Dataset", "Job", "Status", "OK", "Failed", "Score", "Change", "Req/s",
    "Latency p50", "Why",
)  # fmt: skip


def _score(row: EvaluationRow) -> tuple[str, str]:
    """``0.750`` and its change since the previous run (``-0.250``), blank where unscored."""
    score = row.score
    if score is None:
        return "", ""
    if row.previous_score is None:
        return f"{score:.3f}", ""
    return f"{score:.3f}", f"{score - row.previous_score:+.3f}"


def _counts(row: EvaluationRow) -> tuple[str, str]:
    """OK and Failed: requests of a dataset, or the documents an lm-eval task scored."""
    work, scores = row.workload, row.lm_eval
    if work is not None:
        return str(work.ok), str(work.failed + work.invalid)
    if scores is not None and scores.n_samples is not None:
        return str(scores.n_samples), "0"
    return "", ""


def evaluation_table(rows: Sequence[EvaluationRow]) -> Table:
    cells = []
    for row in rows:
        work = row.workload
        why = row.error or (work.failure_text() if work and work.failed + work.invalid else "")
        cells.append(
            (
                row.model,
                row.dataset,
                row.job_id or "",
                row.status,
                *_counts(row),
                *_score(row),
                f"{work.requests_per_s:.2f}" if work else "",
                f"{work.latency_s.p50:.3f} s" if work and work.latency_s.p50 is not None else "",
                _short(why, 200),
            )
        )
    return grid("Evaluation", EVALUATION_COLUMNS, cells)


def evaluation_replicas_table(rows: Sequence[EvaluationRow]) -> Table | None:
    """One line per model served by a replica group; None when no model was."""
    columns = ("Model", "Group", "Replica Jobs", "Held At Once", "Replaced", "Released", "Endpoint")
    cells = []
    seen: set[str] = set()
    for row in rows:
        summary = row.replicas
        if summary is None or summary.group_id in seen:
            continue
        seen.add(summary.group_id)
        cells.append(
            (
                row.model,
                summary.group_id,
                ", ".join(job.job_id for job in summary.jobs),
                str(summary.peak),
                str(len(summary.replacements)),
                str(len(summary.released)) if summary.elastic else "",
                summary.endpoint or "",
            )
        )
    return grid("Replicas", columns, cells) if cells else None


def cleanup_table(rows: Sequence[CleanupRow]) -> Table:
    """What the reaper did with each live job; the reason names the owning run and its state."""
    columns = ("Job", "Model", "Lease", "Action", "Why")
    cells = [(row.job_id, row.model_name, row.lease, row.action, row.reason) for row in rows]
    return grid("Cleanup", columns, cells)


def result_tables(result: object) -> list[Table]:
    """The tables of any flow's result (a ServeResult, or a list of rows or results)."""
    from vec_inf_flows.results import CleanupRow, EvaluationRow, ServeResult

    if isinstance(result, ServeResult):
        return serve_tables(result)
    if isinstance(result, list) and result:
        first = result[0]
        if isinstance(first, EvaluationRow):
            replicas = evaluation_replicas_table(result)
            return [evaluation_table(result), *([replicas] if replicas else [])]
        if isinstance(first, CleanupRow):
            return [cleanup_table(result)]
        if isinstance(first, ServeResult):
            return [table for one in result for table in serve_tables(one)]
    return []


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
