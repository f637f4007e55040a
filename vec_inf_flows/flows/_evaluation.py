"""The parts of ``evaluate`` below the flow: one model's server, the engine that evaluates one
dataset on it, and what a finished run leaves behind (history, regressions, the summary table).

The seams are on purpose: ``ModelServer`` is the one place a model gets its server (a replica
group slots in there), and an ``Engine`` turns one ``DatasetJob`` on a READY server into one
``EvaluationRow`` (``send_dataset`` sends requests and scores them against references). lm-eval
runs after the datasets, once per model for all its tasks (``_lm_eval``), a row per task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol

from vec_inf_flows.artifacts import publish_table
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.evals.history import HistoryEntry, HistoryRow, append_entry, previous_entry
from vec_inf_flows.evals.regression import ScoreChange, regressions, score_changes
from vec_inf_flows.evals.run_folder import history_path
from vec_inf_flows.events import emit_regression_event
from vec_inf_flows.flows._lm_eval import LmEvalJob, run_lm_eval_rows
from vec_inf_flows.flows._replicas import ModelServing, Target
from vec_inf_flows.flows._workload import run_dataset
from vec_inf_flows.jobdir import atomic_write
from vec_inf_flows.presentation import evaluation_table
from vec_inf_flows.replicas.budget import SharedBudget
from vec_inf_flows.replicas.scale import Scale
from vec_inf_flows.results import EvaluationRow
from vec_inf_flows.tasks.ownership import LaunchedServers

logger = logging.getLogger("vec_inf_flows")


@dataclass(frozen=True)
class DatasetJob:
    """One dataset of an evaluation as an engine gets it, for one model."""

    dataset: str
    scorer: str | None
    results: Path


@dataclass(frozen=True)
class Settings:
    """What every dataset of the run shares."""

    chunk_size: int
    min_success_ratio: float
    retry_failed: bool = False
    batch_output: bool = False


class Engine(Protocol):
    def __call__(self, server: Target, job: DatasetJob, settings: Settings) -> EvaluationRow:
        """Evaluate one dataset on a READY server; raise only when the server is unusable."""
        ...


def send_dataset(server: Target, job: DatasetJob, settings: Settings) -> EvaluationRow:
    """Send every request of the dataset (resuming this run's results file), score the answers
    that have a reference; the row fails when too few requests succeeded."""
    summary = run_dataset(
        server,
        job.dataset,
        settings.chunk_size,
        output=str(job.results),
        scorer=job.scorer,
        retry_failed=settings.retry_failed,
        batch_output=settings.batch_output,
    )
    shortfall = summary.shortfall(settings.min_success_ratio)
    return EvaluationRow(
        model=server.model_name,
        dataset=job.dataset,
        job_id=server.job_id,
        status="failed" if shortfall else "ok",
        error=shortfall,
        workload=summary,
    )


@dataclass(frozen=True)
class Timing:
    ready_timeout: float
    poll_interval: float


class ModelServer:
    """One model's server (or replica group) for the run: launched and registered for teardown,
    waited for until READY (a group: its first replica), shut down on the way out however the
    block ends. ``job_id`` is known from the launch on, so the rows of a failure can name the
    job. ``datasets``: what it will serve (an elastic group sizes itself by it); ``endpoint``:
    wait for a group's router too (lm-eval talks to one URL)."""

    def __init__(
        self,
        servers: LaunchedServers,
        model: str,
        options: LaunchOptions,
        timing: Timing,
        scale: Scale | None = None,
        shared: SharedBudget | None = None,
    ) -> None:
        self.model, self.timing = model, timing
        self.scale = scale or Scale()
        self.serving = ModelServing(servers, model, options, self.scale, shared=shared)
        self.datasets: list[str] = []
        self.endpoint = False

    @property
    def job_id(self) -> str | None:
        return self.serving.job_id

    def __enter__(self) -> Target:
        self.serving.launch()
        try:
            timing = self.timing
            return self.serving.ready(
                timing.ready_timeout, timing.poll_interval, self.datasets, self.endpoint
            )
        except BaseException as error:
            self.serving.stop(f"the run failed: {error}")
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.serving.stop("the run ended" if error is None else f"the run failed: {error}")


@contextmanager
def gpu_slot(limit_name: str | None, occupy: int = 1) -> Iterator[None]:
    """Hold slots of a Prefect global concurrency limit (one per server or replica), shared
    with other runs."""
    if limit_name is None:
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit_name, occupy=occupy, strict=True):
        yield


def evaluate_model(
    server: ModelServer,
    jobs: list[DatasetJob],
    settings: Settings,
    gpu_limit_name: str | None,
    engine: Engine = send_dataset,
    lm_eval: LmEvalJob | None = None,
) -> list[EvaluationRow]:
    """One row per dataset (then per lm-eval task); a failure before one ran becomes its row,
    with the reason."""
    rows: list[EvaluationRow] = []
    server.datasets = [job.dataset for job in jobs]
    server.endpoint = lm_eval is not None
    planned = server.datasets + (lm_eval.labels if lm_eval else [])
    try:
        with gpu_slot(gpu_limit_name, server.scale.replicas), server as target:
            for job in jobs:
                rows.append(engine(target, job, settings))
            if lm_eval is not None:
                rows.extend(run_lm_eval_rows(target, lm_eval))
            metrics, _ = server.serving.metrics()
            replicas = server.serving.replicas()
            rows = [
                row.model_copy(update={"metrics": metrics, "replicas": replicas}) for row in rows
            ]
    except Exception as error:
        logger.error("%s failed: %s", server.model, error)
        done = {row.dataset for row in rows}
        rows.extend(
            EvaluationRow(
                model=server.model,
                dataset=dataset,
                job_id=server.job_id,
                status="failed",
                error=f"{type(error).__name__}: {error}",
            )
            for dataset in planned
            if dataset not in done
        )
    return rows


def failure_summary(rows: list[EvaluationRow], limit: int = 300) -> str:
    """Each failed pair with its reason, e.g. ``m on d.jsonl (ServerError: ... KV cache ...)``."""
    reasons = [
        f"{row.model} on {row.dataset} ({str(row.error or 'unknown error')[:limit]})"
        for row in rows
        if row.status != "ok"
    ]
    return "; ".join(reasons) or "none"


@dataclass(frozen=True)
class RunRecord:
    """Where a run is filed: the evaluation, the root of its history, its own folder."""

    evaluation: str
    root: Path
    folder: Path
    flow_run_id: str
    started_at: datetime


def _counts(row: EvaluationRow) -> tuple[int, int, int, int]:
    """scored, ok, failed, total: a dataset's requests, or the documents lm-eval scored."""
    if row.lm_eval is not None:
        scored = (row.lm_eval.n_samples or 0) if row.score is not None else 0
        return scored, scored, 0, scored
    work = row.workload
    if work is None:
        return 0, 0, 0, 0
    return work.scored, work.ok, work.failed + work.invalid, work.attempted


def history_row(row: EvaluationRow) -> HistoryRow:
    scored, ok, failed, total = _counts(row)
    return HistoryRow(
        model=row.model,
        dataset=row.dataset,
        status=row.status,
        scorer=row.scorer,
        score=row.score,
        scored=scored,
        ok=ok,
        failed=failed,
        total=total,
    )


def file_run(
    record: RunRecord, rows: list[EvaluationRow], threshold: float
) -> tuple[list[EvaluationRow], list[ScoreChange]]:
    """Append the run to its evaluation's history, compare it with the previous run, and emit
    ``vec-inf.eval.regression`` for each pair whose score fell by more than ``threshold``.
    Returns the rows with their previous scores, and the regressions."""
    entry = HistoryEntry(
        evaluation=record.evaluation,
        flow_run_id=record.flow_run_id,
        started_at=record.started_at,
        finished_at=datetime.now(UTC),
        folder=str(record.folder),
        rows=[history_row(row) for row in rows],
    )
    history = history_path(record.root, record.evaluation)
    changes = score_changes(entry, previous_entry(history, record.flow_run_id))
    append_entry(history, entry)
    atomic_write(record.folder / "summary.json", entry.model_dump_json(indent=2) + "\n")
    before = {(c.model, c.dataset, c.scorer): c.previous_score for c in changes}
    rows = [
        row.model_copy(update={"previous_score": before.get((row.model, row.dataset, row.scorer))})
        for row in rows
    ]
    fallen = regressions(changes, threshold)
    for change in fallen:
        logger.warning(
            "%s on %s scored %.3f, %.3f below the previous run (%s)",
            change.model, change.dataset, change.score, change.drop, change.previous_flow_run_id,
        )  # fmt: skip
        emit_regression_event(record.evaluation, change, threshold, str(record.folder))
    return rows, fallen


def publish_summary(
    record: RunRecord, rows: list[EvaluationRow], models: int, datasets: int, fallen: int
) -> None:
    """``vec-inf-evaluation-<name>``: one key per evaluation, so the UI keeps every run's table
    as a version of the same artifact."""
    failures = failure_summary(rows)
    publish_table(
        f"vec-inf-evaluation-{record.evaluation}",
        evaluation_table(rows),
        f"{record.evaluation}: {models} models × {datasets} datasets; failed: {failures}; "
        f"score regressions: {fallen}; results in {record.folder}.",
    )
