"""Which config files apply, from the environment alone (cheap: no file is parsed here).

Lowest first, each merged over the one before (see loader.py for what a layer may set):

1. ``$VEC_INF_CONFIG_DIR/environment.yaml``: vec-inf's cluster file, read as site defaults
   (its ``paths.cached_model_config_path`` names one more models file, layered next);
2. ``$VEC_INF_CONFIG_DIR/models.yaml`` when it exists (vec-inf's newer entry point);
3. ``$VEC_INF_MODEL_CONFIG`` (vec-inf's newer entry point for one models file);
4. ``$VEC_INF_CONFIG`` (the user guide's entry point);
5. files named for one command: ``launch --config``, ``batch-launch --batch-config``.

A path a variable names must exist; only the directory's ``models.yaml`` and
``environment.yaml`` are optional, as a directory may hold either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vec_inf_flows.errors import ConfigError

USER_CONFIG_ENV = "VEC_INF_CONFIG"
MODEL_CONFIG_ENV = "VEC_INF_MODEL_CONFIG"
CONFIG_DIR_ENV = "VEC_INF_CONFIG_DIR"
ENTRY_POINT_VARS = (CONFIG_DIR_ENV, MODEL_CONFIG_ENV, USER_CONFIG_ENV)
SITE_FILENAME = "environment.yaml"
MODELS_FILENAME = "models.yaml"


SourceKind = Literal["models", "site"]
_DIRECTORY_FILES: tuple[tuple[str, SourceKind], ...] = (
    (SITE_FILENAME, "site"),
    (MODELS_FILENAME, "models"),
)


@dataclass(frozen=True)
class ConfigSource:
    path: str
    what: str  # how a "cannot read" error names it: "VEC_INF_CONFIG file" ...
    kind: SourceKind = "models"


def config_sources(
    environ: Mapping[str, str], extra_files: Sequence[str | Path] = ()
) -> list[ConfigSource]:
    sources: list[ConfigSource] = []
    directory = environ.get(CONFIG_DIR_ENV, "").strip()
    if directory:
        if not os.path.isdir(directory):
            raise ConfigError(f"{CONFIG_DIR_ENV} {directory}: no such directory.")
        for name, kind in _DIRECTORY_FILES:
            path = os.path.join(directory, name)
            if os.path.exists(path):
                sources.append(ConfigSource(path, f"{CONFIG_DIR_ENV} file", kind))
    for variable in (MODEL_CONFIG_ENV, USER_CONFIG_ENV):
        path = environ.get(variable, "").strip()
        if path:
            sources.append(ConfigSource(path, f"{variable} file"))
    sources.extend(ConfigSource(str(path), "config file") for path in extra_files)
    return sources


def file_stamp(path: str) -> tuple[int, int]:
    """What tells a changed file from the one read before: modification time and size."""
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)  # the reader reports a missing file
    return (stat.st_mtime_ns, stat.st_size)
