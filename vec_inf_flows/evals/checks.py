"""lm-eval parameters checked before anything is launched (Prefect-free, for the flow and the CLI).

A task name must be bundled, defined by a YAML of the task folder (``task:``, ``group:`` or
``tag:``), or one of lm-eval's built-in tasks; only a name that is neither bundled nor in the
folder costs the look-up in lm-eval's index (~6 s, its task files are many). Whether a task's
data loads is lm-eval's to find out: a task that breaks fails its own row, not the run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals.lm_eval import INSTALL_HINT
from vec_inf_flows.evals.models import LmEvalSpec
from vec_inf_flows.evals.task_files import bundled_task_names
from vec_inf_flows.replicas.scale import Scale

LABEL_PREFIX = "lm-eval:"


def as_spec(value: LmEvalSpec | Mapping[str, Any] | None) -> LmEvalSpec | None:
    """The spec from a flow parameter or the CLI's dict; a bad field is one line."""
    if value is None or isinstance(value, LmEvalSpec):
        return value
    try:
        return LmEvalSpec.model_validate(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"lm_eval{'.' + where if where else ''}: {first['msg']}") from None


def _yaml_names(folder: Path) -> Iterator[str]:
    for path in sorted(folder.rglob("*.yaml")):
        try:
            config = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # !function stays text
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(config, dict):
            continue
        for key in ("task", "group", "tag"):
            value = config.get(key)
            for name in value if isinstance(value, list) else [value]:
                if isinstance(name, str):
                    yield name


def _built_in(names: list[str]) -> set[str]:
    from lm_eval.tasks import TaskManager

    known = set(TaskManager().all_tasks)
    return {name for name in names if name in known}


def check_lm_eval(value: LmEvalSpec | Mapping[str, Any] | None) -> LmEvalSpec | None:
    """Refuse, in one line, what would fail every task: lm-eval missing, the task folder
    missing, a task name nobody defines. Returns the spec (None when lm-eval is not asked)."""
    spec = as_spec(value)
    if spec is None:
        return None
    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(INSTALL_HINT)
    known = set(bundled_task_names())
    if spec.include_path is not None:
        folder = Path(spec.include_path).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"lm_eval.include_path: task folder not found: {folder}")
        known |= set(_yaml_names(folder))
    for task in spec.tasks:
        if not task or task != task.strip() or "," in task:
            raise ConfigError(f"lm_eval.tasks: {task!r} is not a task name.")
    if len(set(spec.tasks)) < len(spec.tasks):
        raise ConfigError("lm_eval.tasks lists a task twice; give each once.")
    unknown = [task for task in spec.tasks if task not in known]
    missing = sorted(set(unknown) - _built_in(unknown)) if unknown else []
    if missing:
        where = f" or in {spec.include_path}" if spec.include_path else ""
        raise ConfigError(
            f"lm_eval.tasks: unknown task(s) {', '.join(missing)}: neither bundled "
            f"({', '.join(sorted(bundled_task_names()))}){where} nor built into lm-eval."
        )
    return spec


def check_lm_eval_scale(scale: Scale) -> None:
    """lm-eval talks to one URL: a replica group needs its router."""
    if scale.grouped and scale.router == "none":
        raise ConfigError(
            "lm_eval needs one URL per model: with replicas set router='job' or 'local' "
            "(lm-eval then talks to the group's router)."
        )


def task_label(task: str) -> str:
    """An lm-eval task's name in rows, the history and regression events."""
    return f"{LABEL_PREFIX}{task}"
