"""Artifacts on the flow-run page: what was launched, how far the workload is, what it measured.

Artifact failures are logged and swallowed: a missing table must never fail a GPU run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

logger = logging.getLogger("vec_inf_flows")


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) built from free text."""
    text = "-".join(parts).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{key: _cell(value) for key, value in row.items()} for row in rows]


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> UUID | None:
    try:
        created = create_table_artifact(
            table=_rows(rows), key=artifact_key(key), description=description
        )
        return cast(UUID, created)  # sync context: the call is not a coroutine here
    except Exception as error:
        logger.warning("could not publish artifact %s: %s", key, error)
        return None


def server_launch_rows(
    model_name: str, job_id: str, config: Mapping[str, Any], status: str
) -> list[dict[str, Any]]:
    """Rows of the launch table: one per config field, the status first."""
    rows: list[dict[str, Any]] = [
        {"field": "model", "value": model_name},
        {"field": "job id", "value": job_id},
        {"field": "status", "value": status},
    ]
    rows.extend({"field": str(name), "value": value} for name, value in config.items())
    return rows


def publish_launch_table(
    model_name: str, job_id: str, config: Mapping[str, Any], status: str
) -> UUID | None:
    return publish_table(
        f"vec-inf-launch-{model_name}",
        server_launch_rows(model_name, job_id, config, status),
        f"Server config and status of {model_name} (job {job_id}) at launch.",
    )


def metrics_rows(metrics: Any) -> list[dict[str, Any]]:
    """The metrics table the CLI shows (the guide's rows), as artifact rows; anything that is
    not a server metrics result is flattened as it is."""
    from vec_inf_flows.server.metrics import rows_of_dump

    if hasattr(metrics, "model_dump"):
        metrics = metrics.model_dump()
    if isinstance(metrics, Mapping):
        rows = rows_of_dump(metrics)
        if rows is not None:
            return [{"metric": name, "value": value} for name, value in rows]
        return [{"metric": str(name), "value": value} for name, value in metrics.items()]
    return [{"metric": "metrics", "value": metrics}]


class Progress:
    """A live progress bar, updated once per finished chunk."""

    def __init__(self, total: int, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.description = description
        self._id: UUID | None = None
        try:
            created = create_progress_artifact(progress=0.0, description=description)
            self._id = cast(UUID, created)
        except Exception as error:
            logger.warning("could not create the progress artifact: %s", error)

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1)

    def advance(self, steps: int = 1) -> None:
        self.done = min(self.done + steps, self.total)
        if self._id is None:
            return
        try:
            update_progress_artifact(artifact_id=self._id, progress=self.percent)
        except Exception as error:
            logger.warning("could not update the progress artifact: %s", error)
