"""Running a workload against a ready server: one task run per chunk, a progress bar per run.

Ten thousand requests become tens of task runs, not ten thousand: each task run costs the API
tens of kilobytes and milliseconds, while a chunk is one call to the workload runner.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vec_inf_flows.artifacts import Progress, artifact_key
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.tasks import run_workload, run_workload_chunk
from vec_inf_flows.workload.reader import iter_chunks
from vec_inf_flows.workload.stats import output_latencies

Workload = str | Callable[..., Any]

_COUNTERS = ("total", "ok", "failed", "invalid", "skipped", "retries")
_TOKENS = ("prompt_tokens", "completion_tokens")


def output_path_for(dataset: str, model_name: str, output_dir: str | None) -> Path:
    """Results live next to the dataset (or in ``output_dir``) under a name per model, so a
    rerun resumes where the last one stopped instead of sending everything again."""
    source = Path(dataset).expanduser()
    directory = Path(output_dir).expanduser() if output_dir else source.parent
    return directory / f"{source.stem}.{artifact_key(model_name)}.results.jsonl"


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up the counters of chunk summaries; throughput over the summed elapsed time."""
    total: dict[str, Any] = {"chunks": len(summaries)}
    for key in (*_COUNTERS, *_TOKENS, "elapsed_s"):
        total[key] = sum(summary.get(key) or 0 for summary in summaries)
    elapsed = total["elapsed_s"] = round(total["elapsed_s"] or 0.0, 4)
    total["requests_per_s"] = round(total["ok"] / elapsed, 3) if elapsed else 0.0
    total["completion_tokens_per_s"] = (
        round(total["completion_tokens"] / elapsed, 3) if elapsed else 0.0
    )
    return total


def run_dataset(
    base_url: str,
    model_name: str,
    dataset: str,
    chunk_size: int,
    output_dir: str | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """Send the dataset chunk by chunk; results go to ``output`` (or a file per model).

    Progress is reported twice over: per request to ``vec_inf_flows.progress`` (the CLI's bar)
    and per chunk to the run's progress artifact (the UI's bar).
    """
    source = Path(dataset).expanduser()
    if not source.is_file():
        raise ConfigError(f"Dataset {dataset} does not exist.")
    results = (
        Path(output).expanduser() if output else output_path_for(dataset, model_name, output_dir)
    )
    results.parent.mkdir(parents=True, exist_ok=True)
    chunks = list(iter_chunks(source, chunk_size))
    total = sum(chunk.count for chunk in chunks)
    label = f"{model_name}: {source.name}"
    artifact = Progress(len(chunks), f"{label}, {total} requests")
    summaries: list[dict[str, Any]] = []
    done = 0
    for chunk in chunks:
        summaries.append(
            run_workload_chunk(
                base_url,
                model_name,
                str(source),
                str(results),
                chunk,
                progress_label=label,
                done_before=done,
                total=total,
            )
        )
        done += chunk.count
        artifact.advance()
    merged = merge_summaries(summaries)
    latency, ttft = output_latencies(results)
    merged["latency_s"] = latency.model_dump()
    if ttft.p50 is not None:
        merged["ttft_s"] = ttft.model_dump()
    merged["dataset"] = dataset
    merged["output"] = str(results)
    return merged


def run_any(
    base_url: str,
    model_name: str,
    *,
    dataset: str | None,
    workload: Workload | None,
    chunk_size: int,
    output_dir: str | None,
    output: str | None = None,
) -> dict[str, Any]:
    """The dataset (chunked), or the workload callable, or nothing when neither is given."""
    if dataset is not None and workload is not None:
        raise ConfigError("Give either a dataset or a workload, not both.")
    if output is not None and dataset is None:
        raise ConfigError("An output file needs a dataset (--input) to fill it.")
    if dataset is not None:
        return run_dataset(base_url, model_name, dataset, chunk_size, output_dir, output)
    if workload is not None:
        return run_workload(base_url, model_name, workload)
    return {}
