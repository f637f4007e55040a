"""lm-eval as an engine of ``evaluate``: one task run per model against its READY server (or its
replica group's router), one ``EvaluationRow`` per model × lm-eval task.

A row's dataset is ``lm-eval:<task>`` and its score the task's primary metric (``acc`` for
multiple choice, ``exact_match`` for generation) or the spec's ``metric`` where the task reports
it, its scorer ``lm-eval:<metric>``: so the summary table, the history and the regression events
carry it like any dataset's score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows.errors import ServerError
from vec_inf_flows.evals.checks import task_label
from vec_inf_flows.evals.models import EvalServer, LmEvalReport, LmEvalSpec
from vec_inf_flows.evals.results import primary_score
from vec_inf_flows.evals.servers import eval_server, job_config
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.results import EvaluationRow
from vec_inf_flows.tasks.lm_eval import run_lm_eval_task

LM_EVAL_DIR = "lm-eval"


@dataclass(frozen=True)
class LmEvalJob:
    """The lm-eval part of one model's evaluation: what to run, where its files go."""

    spec: LmEvalSpec
    output_dir: Path

    @property
    def labels(self) -> list[str]:
        return [task_label(task) for task in self.spec.tasks]


def server_for_lm_eval(target: ServerHandle | ServingGroup) -> EvalServer:
    """lm-eval's view of a READY server or group: for a group, the router's endpoint, the
    replicas' weights dir and key, and what all its replicas run at once."""
    if isinstance(target, ServingGroup):
        if target.endpoint is None:
            raise ServerError(f"Replica group {target.job_id} has no router endpoint for lm-eval.")
        spec = target.group.spec
        return eval_server(
            target.model_name,
            target.endpoint,
            spec.model_path,
            spec.engine_args,
            target.group.plan.api_key,
            replicas=target.group.plan.replicas,
        )
    if target.base_url is None:
        raise ServerError(f"Server {target.job_id} is not READY: no URL for lm-eval.")
    config = job_config(target.job_dir, target.model_name, target.job_id)
    return eval_server(
        target.model_name,
        target.base_url,
        config.get("model_path"),
        config.get("engine_args") or {},
        target.api_key,
    )


def report_rows(
    report: LmEvalReport, job_id: str | None, metric: str | None = None
) -> list[EvaluationRow]:
    """One row per task lm-eval reported on (a group's subtasks too)."""
    return [
        EvaluationRow(
            model=report.model,
            dataset=task_label(result.task),
            job_id=job_id,
            status="ok" if result.ok else "failed",
            error=result.error,
            lm_eval=primary_score(result, metric),
        )
        for result in report.tasks
    ]


def run_lm_eval_rows(target: ServerHandle | ServingGroup, job: LmEvalJob) -> list[EvaluationRow]:
    """Run the job's lm-eval tasks against the target as one task run; rows per task."""
    report = run_lm_eval_task(server_for_lm_eval(target), job.spec, str(job.output_dir))
    return report_rows(report, target.job_id, job.spec.metric)
