"""Prefect events, so automations can react: a server's life (``vec-inf.server.*``, the resource
``vec-inf.server.<job_id>``) and an evaluation's score falling (``vec-inf.eval.regression``, the
resource ``vec-inf.evaluation.<name>``). Inside a flow run Prefect relates each event to the run
and the flow by itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from prefect.events import emit_event

if TYPE_CHECKING:
    from vec_inf_flows.evals.regression import ScoreChange

logger = logging.getLogger("vec_inf_flows")
REGRESSION_EVENT = "vec-inf.eval.regression"

ServerEvent = Literal["submitted", "ready", "failed", "shutdown"]


def server_resource(job_id: str, model_name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"vec-inf.server.{job_id}",
        "prefect.resource.name": model_name,
        "vec-inf.model": model_name,
        "vec-inf.job-id": job_id,
    }


def emit_server_event(kind: ServerEvent, job_id: str, model_name: str, **payload: Any) -> None:
    """Emit ``vec-inf.server.<kind>``; never raises, because events must not break teardown."""
    try:
        emit_event(
            event=f"vec-inf.server.{kind}",
            resource=server_resource(job_id, model_name),
            payload={"job_id": job_id, "model_name": model_name, **payload},
        )
    except Exception as error:  # an unreachable event stream must not fail the flow
        logger.warning("could not emit vec-inf.server.%s for job %s: %s", kind, job_id, error)


def evaluation_resource(evaluation: str, change: ScoreChange) -> dict[str, str]:
    """The labels an automation matches on: the evaluation, and the model, dataset and scorer
    whose score fell."""
    return {
        "prefect.resource.id": f"vec-inf.evaluation.{evaluation}",
        "prefect.resource.name": evaluation,
        "vec-inf.evaluation": evaluation,
        "vec-inf.model": change.model,
        "vec-inf.dataset": change.dataset,
        "vec-inf.scorer": change.scorer or "",
    }


def emit_regression_event(
    evaluation: str, change: ScoreChange, threshold: float, folder: str
) -> bool:
    """Emit ``vec-inf.eval.regression`` for one pair; never raises (the run's results are
    already written), says whether the event was handed to Prefect."""
    try:
        emit_event(
            event=REGRESSION_EVENT,
            resource=evaluation_resource(evaluation, change),
            payload={
                "evaluation": evaluation,
                "model": change.model,
                "dataset": change.dataset,
                "scorer": change.scorer,
                "score": change.score,
                "previous_score": change.previous_score,
                "drop": change.drop,
                "threshold": threshold,
                "previous_flow_run_id": change.previous_flow_run_id,
                "folder": folder,
            },
        )
    except Exception as error:
        logger.warning("could not emit %s for %s: %s", REGRESSION_EVENT, change.model, error)
        return False
    return True
