"""Running a workload against a ready server: one task run per chunk, a progress bar per run.

Ten thousand requests become tens of task runs, not ten thousand: each task run costs the API
tens of kilobytes and milliseconds, while a chunk is one call to the workload runner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vec_inf_flows.artifacts import Progress, artifact_key, publish_table
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.presentation import key_value, workload_rows
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.results import WorkloadSummary
from vec_inf_flows.scoring import AUTO
from vec_inf_flows.tasks.workload import Workload, run_workload, run_workload_chunk
from vec_inf_flows.workload.batch_format import write_batch_output
from vec_inf_flows.workload.checks import check_work
from vec_inf_flows.workload.reader import iter_chunks
from vec_inf_flows.workload.stats import digest_output
from vec_inf_flows.workload.store import forget_failed

logger = logging.getLogger("vec_inf_flows")


def output_path_for(dataset: str, model_name: str, output_dir: str | None) -> Path:
    """Results live next to the dataset (or in ``output_dir``) under a name per model, so a
    rerun resumes where the last one stopped instead of sending everything again."""
    source = Path(dataset).expanduser()
    directory = Path(output_dir).expanduser() if output_dir else source.parent
    return directory / f"{source.stem}.{artifact_key(model_name)}.results.jsonl"


def run_dataset(
    server: ServerHandle | ServingGroup,
    dataset: str,
    chunk_size: int,
    output_dir: str | None = None,
    output: str | None = None,
    *,
    scorer: str | None = None,
    retry_failed: bool = False,
    batch_output: bool = False,
) -> WorkloadSummary:
    """Send the dataset chunk by chunk; results go to ``output`` (or a file per model).

    Progress is reported twice over: per request to ``vec_inf_flows.progress`` (the CLI's bar)
    and per chunk to the run's progress artifact (the UI's bar). The summary's counts and
    failure reasons are those of the whole output file, earlier runs included. With
    ``retry_failed`` the failed records of earlier runs are sent again (once, before the first
    chunk); with ``batch_output`` the results are also written in the OpenAI Batch format.
    """
    source = Path(dataset).expanduser()
    if not source.is_file():
        raise ConfigError(f"Dataset {dataset} does not exist.")
    model = server.model_name
    results = Path(output).expanduser() if output else output_path_for(dataset, model, output_dir)
    results.parent.mkdir(parents=True, exist_ok=True)
    if retry_failed and (forgotten := forget_failed(results)):
        logger.info("%s: sending the %d failed requests of %s again", model, forgotten, results)
    chunks = list(iter_chunks(source, chunk_size))
    total = sum(chunk.count for chunk in chunks)
    label = f"{model}: {source.name}"
    artifact = Progress(len(chunks), f"{label}, {total} requests")
    summaries = []
    done = 0
    for chunk in chunks:
        summaries.append(
            run_workload_chunk(
                server,
                str(source),
                str(results),
                chunk,
                progress_label=label,
                done_before=done,
                total=total,
                scorer=scorer,
            )
        )
        done += chunk.count
        artifact.advance()
    digest = digest_output(results)
    summary = WorkloadSummary.of(dataset, str(results), summaries, digest, scorer or AUTO)
    if batch_output:
        write_batch_output(results, batch_path_for(results))
    publish_table(
        f"vec-inf-workload-{model}-{source.stem}",
        key_value("Workload", workload_rows(summary)),
        f"{model} on {source.name}: {summary.ok} of {summary.total} answered.",
    )
    return summary


def batch_path_for(results: Path) -> Path:
    """``answers.jsonl`` -> ``answers.batch.jsonl``, beside it."""
    stem = results.name.removesuffix(".jsonl")
    return results.with_name(f"{stem}.batch.jsonl")


@dataclass(frozen=True)
class Work:
    """What a flow runs on its server, as one value: a dataset (where its results go, how they
    are scored), or a workload callable, or nothing."""

    dataset: str | None = None
    workload: Workload | None = None
    chunk_size: int = 500
    output_dir: str | None = None
    output: str | None = None
    scorer: str | None = None
    retry_failed: bool = False
    batch_output: bool = False

    def check(self) -> None:
        check_work(self.dataset, self.workload, self.output)

    def resumed(self) -> Work:
        """The same work on a replacement server: it resumes the file, retrying nothing again."""
        return replace(self, retry_failed=False)


def run_any(
    server: ServerHandle | ServingGroup, work: Work
) -> tuple[WorkloadSummary | None, dict[str, Any] | None]:
    """The dataset (chunked), or the workload callable, or nothing when neither is given."""
    work.check()
    if work.dataset is not None:
        summary = run_dataset(
            server,
            work.dataset,
            work.chunk_size,
            work.output_dir,
            work.output,
            scorer=work.scorer,
            retry_failed=work.retry_failed,
            batch_output=work.batch_output,
        )
        return summary, None
    if work.workload is not None:
        return None, run_workload(server, work.workload)
    return None, None
