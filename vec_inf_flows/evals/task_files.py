"""The task folder lm-eval gets: the bundled tasks with absolute data paths, plus the user's.

``datasets`` resolves a relative ``data_files`` path against the working directory, not the
YAML's folder, so the bundled YAMLs are rewritten with absolute paths into the run's folder each
time (wherever the package is installed). lm-eval takes a single ``--include_path``; the user's
folder joins as a tree of file links (``include:`` and ``!function`` keep resolving next to the
YAML, and no file is copied or changed).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vec_inf_flows.errors import ConfigError

BUNDLED_PACKAGE = "vec_inf_flows.data.lm_eval_tasks"
# Within one include path lm-eval keeps the first task of a name, in path order: the user's
# folder sorts first, so a task of theirs can replace a bundled one of the same name.
USER_DIR = "1-yours"
BUNDLED_DIR = "2-bundled"


def bundled_source() -> Path:
    return Path(str(resources.files(BUNDLED_PACKAGE)))


def bundled_task_names() -> list[str]:
    return sorted(
        str(yaml.safe_load(p.read_text())["task"]) for p in bundled_source().glob("*.yaml")
    )


def _absolute(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        return str((base / value).resolve())
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(v, base) for k, v in value.items()}
    return value


def write_bundled(dest: Path) -> Path:
    """Write the bundled task YAMLs into ``dest`` with their data files made absolute."""
    source = bundled_source()
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        kwargs = config.get("dataset_kwargs") or {}
        if "data_files" in kwargs:
            kwargs["data_files"] = _absolute(kwargs["data_files"], source)
        target = dest / path.name
        target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return dest


def link_tree(source: Path, dest: Path) -> None:
    """Mirror ``source`` as folders of symlinks to its files (globbing never needs to follow a
    linked folder, which Python 3.13's ``Path.glob`` would not do)."""
    for folder, _dirs, files in os.walk(source, followlinks=True):
        relative = Path(folder).relative_to(source)
        (dest / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            link = dest / relative / name
            if not link.exists():
                link.symlink_to(Path(folder, name).resolve())


def prepare_task_dir(dest: Path, include_path: Path | None) -> Path:
    """The one folder to pass as ``--include_path``."""
    write_bundled(dest / BUNDLED_DIR)
    if include_path is not None:
        if not include_path.is_dir():
            raise ConfigError(f"Task folder not found: {include_path}")
        link_tree(include_path.resolve(), dest / USER_DIR)
    return dest
