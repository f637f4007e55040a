"""Artifacts on the flow-run page: what was launched, how far the workload is, what it measured.

The tables are ``presentation`` tables, the same rows the CLI prints. Keys name the model (not
the job), so the Artifacts page keeps one versioned series per model across runs. Failures to
publish are logged and swallowed: a missing table must never fail a GPU run.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, cast
from uuid import UUID

from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from vec_inf_flows.presentation import Table, key_value, launch_rows

if TYPE_CHECKING:
    from vec_inf_flows.models import LaunchResponse

logger = logging.getLogger("vec_inf_flows")


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) built from free text."""
    text = "-".join(parts).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")


def publish_table(key: str, table: Table, description: str) -> UUID | None:
    try:
        created = create_table_artifact(
            table=table.records(), key=artifact_key(key), description=description
        )
        return cast(UUID, created)  # sync context: the call is not a coroutine here
    except Exception as error:
        logger.warning("could not publish artifact %s: %s", key, error)
        return None


def publish_launch_table(launched: LaunchResponse, status: str) -> UUID | None:
    """``vec-inf-launch-<model>``: the guide's Job Config table of the launch."""
    rows = [("Status", status), *launch_rows(launched)]
    return publish_table(
        f"vec-inf-launch-{launched.model_name}",
        key_value("Job Config", rows),
        f"Server config and status of {launched.model_name} (job {launched.job_id}) at launch.",
    )


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
