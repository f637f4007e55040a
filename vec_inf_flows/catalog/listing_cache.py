"""The catalog as ``list`` shows it, precompiled: read back as JSON, without YAML or pydantic.

Building the catalog (parse ~130 YAML entries, merge the layers, validate every model) is most
of a ``list`` call's time. The result only changes when a file or an environment variable
that feeds it changes, so it is kept in the state home as JSON and used again while every
file it was built from has the same modification time and size, the package is the same
version and the variables (``VEC_INF_CONFIG`` ..., ``VEC_INF_PARTITION`` ...) are unchanged.

The file is written atomically, readable by its owner only, and ignored when another user owns
it or others may write to it (then the catalog is simply built again).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vec_inf_flows import __version__, jobdir
from vec_inf_flows.catalog.sources import ENTRY_POINT_VARS, config_sources, file_stamp
from vec_inf_flows.errors import ConfigWarning

CACHE_FORMAT = 1
BUILTIN_PATH = str(Path(__file__).with_name("models.yaml"))
# The variables the catalog reads (loader.ENV_DEFAULTS), named here to keep this module light.
_ENV_VARIABLES = (
    "VEC_INF_ACCOUNT",
    "VEC_INF_LOG_DIR",
    "VEC_INF_MODEL_WEIGHTS_PARENT_DIR",
    "VEC_INF_PARTITION",
    "VEC_INF_QOS",
    "VEC_INF_WORK_DIR",
    *ENTRY_POINT_VARS,
)


@dataclass(frozen=True)
class Listing:
    """Per model: the short row of ``list`` and the full config of ``list MODEL``."""

    rows: list[dict[str, Any]]  # name, family, variant, model_type; sorted by name
    configs: dict[str, dict[str, Any]]  # every ModelConfig field, unset ones as None
    notes: list[str]  # config warnings, repeated on every use as the files still hold them


def load_listing(environ: Mapping[str, str] | None = None) -> Listing:
    env = os.environ if environ is None else environ
    sources = config_sources(env)  # a missing file an entry point names: its one-line error
    key = _key(env, [source.path for source in sources])
    path = jobdir.state_home() / "cache" / f"catalog-{key[:16]}.json"
    cached = _read(path, key)
    if cached is not None:
        for note in cached.notes:
            warnings.warn(note, ConfigWarning, stacklevel=2)
        return cached
    from vec_inf_flows.catalog.loader import load_catalog

    catalog = load_catalog(environ=env)  # warns about the notes itself
    listing = Listing(
        rows=[
            {
                "name": name,
                "family": config.model_family,
                "variant": config.model_variant,
                "model_type": config.model_type,
            }
            for name, config in ((name, catalog.models[name]) for name in catalog.names())
        ],
        configs={name: config.model_dump(mode="json") for name, config in catalog.models.items()},
        notes=list(catalog.notes),
    )
    stamps = [(BUILTIN_PATH, file_stamp(BUILTIN_PATH)), *catalog.sources]
    _write(path, key, listing, stamps)
    return listing


def _key(env: Mapping[str, str], paths: list[str]) -> str:
    material = {
        "format": CACHE_FORMAT,
        "version": __version__,
        "builtin": BUILTIN_PATH,
        "sources": paths,
        "env": {name: env.get(name, "") for name in _ENV_VARIABLES},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read(path: Path, key: str) -> Listing | None:
    try:
        with path.open(encoding="utf-8") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
                return None
            data = json.load(handle)
        if data.get("key") != key:
            return None
        for name, stamp in data["stamps"]:
            if file_stamp(name) != tuple(stamp):
                return None
        return Listing(data["rows"], data["configs"], data["notes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(
    path: Path, key: str, listing: Listing, stamps: list[tuple[str, tuple[int, int]]]
) -> None:
    document = {
        "key": key,
        "stamps": stamps,
        "rows": listing.rows,
        "configs": listing.configs,
        "notes": listing.notes,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        jobdir.atomic_write(path, json.dumps(document), mode=0o600)
    except OSError:
        pass  # a read-only home only costs the next call the build
