"""Task-run names people can read in the UI: ``launch-<model>``, ``wait-<job>``,
``chunk-<dataset>-<n>``, built from the run's parameters when it starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.runtime import task_run as runtime_task_run


def _text(value: Any) -> str | None:
    if value is None:
        return None
    for attribute in ("job_id", "model_name"):  # a handle, a server block
        if hasattr(value, attribute):
            return str(getattr(value, attribute))
    return str(value)


def run_name(prefix: str, *names: str) -> Callable[[], str]:
    """``prefix-<first parameter that is set>-...``; handles give their job id."""

    def label() -> str:
        params = runtime_task_run.parameters
        parts = [text for name in names if (text := _text(params.get(name))) is not None]
        return "-".join([prefix, *parts[:1]] if parts else [prefix])

    return label


def chunk_name() -> str:
    """``chunk-<dataset stem>-<chunk index>`` (``-all`` for a whole dataset in one run)."""
    params = runtime_task_run.parameters
    dataset = Path(str(params.get("dataset") or "dataset")).stem
    chunk = params.get("chunk")
    index = getattr(chunk, "index", None)
    if index is None and isinstance(chunk, dict):
        index = chunk.get("index")
    return f"chunk-{dataset}-{index if index is not None else 'all'}"
