"""Prefect events about server life, so automations can react to a server becoming ready.

Every event names the server as the resource ``vec-inf.server.<job_id>``; inside a flow run
Prefect relates it to the run and flow by itself.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from prefect.events import emit_event

logger = logging.getLogger("vec_inf_flows")

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
