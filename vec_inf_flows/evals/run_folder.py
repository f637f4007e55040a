"""Where one evaluation run writes: ``<root>/<evaluation>/<UTC start>-<flow run id>/``.

The folder is found again by its flow run id, so the retries of one run (a task retry, a retry of
the whole flow run) resume in it, while the next scheduled run, a new flow run, starts an empty
one and sends every request again. Inside: ``<model>/<dataset>.results.jsonl`` per pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.jobdir import state_home

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
HISTORY_FILE = "history.jsonl"


def default_root() -> Path:
    """``$VEC_INF_FLOWS_HOME/evaluations`` (``~/.vec-inf-flows/evaluations``)."""
    return state_home() / "evaluations"


def check_name(name: str) -> str:
    """An evaluation name is a folder name and part of an artifact key: letters, digits, dots,
    dashes and underscores."""
    if not _NAME.match(name):
        raise ConfigError(
            f"Evaluation name {name!r} must be 1-100 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit."
        )
    return name


def check_distinct(models: Sequence[str], datasets: Sequence[str]) -> None:
    """Refuse a model or a dataset (by resolved path) listed twice: evaluating it twice would
    only write its results twice."""
    for what, items in (("models", models), ("datasets", datasets)):
        seen: set[str] = set()
        for item in items:
            key = str(Path(item).expanduser().resolve()) if what == "datasets" else item
            if key in seen:
                raise ConfigError(f"{what} lists {item!r} twice; give each once.")
            seen.add(key)


def history_path(root: str | Path, evaluation: str) -> Path:
    return Path(root).expanduser() / evaluation / HISTORY_FILE


def run_folder(root: str | Path, evaluation: str, run_id: str, now: datetime | None = None) -> Path:
    """This run's folder: the one already made for ``run_id`` (a retry), else a new one."""
    parent = Path(root).expanduser() / evaluation
    parent.mkdir(parents=True, exist_ok=True)
    earlier = sorted(parent.glob(f"*-{run_id}"))
    if earlier:
        return earlier[0]
    started = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = parent / f"{started}-{run_id}"
    folder.mkdir()
    return folder


def safe_name(text: str) -> str:
    """A file name from free text (a model or dataset name), readable and without separators."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"


def dataset_labels(datasets: Sequence[str]) -> dict[str, str]:
    """A short, unique label per dataset: its file stem, numbered when two stems collide."""
    labels: dict[str, str] = {}
    taken: set[str] = set()
    for dataset in datasets:
        stem = safe_name(Path(dataset).stem)
        label, number = stem, 2
        while label in taken:
            label, number = f"{stem}-{number}", number + 1
        labels[dataset] = label
        taken.add(label)
    return labels


def results_path(folder: Path, model: str, label: str) -> Path:
    return folder / safe_name(model) / f"{label}.results.jsonl"
