"""The catalog as ``list`` shows it, precompiled: read back as JSON, without YAML or pydantic.

Building the catalog (parse ~130 YAML entries, merge the layers, validate every model) is most
of a ``list`` call's time. The result only changes when a file or an environment variable
that feeds it changes, so it is kept in the state home as JSON and used again while every
file it was built from has the same modification time and size, the package is the same
version and the variables (``VEC_INF_CONFIG`` ..., ``VEC_INF_PARTITION`` ...) are unchanged.

The file is written atomically, readable by its owner only, and ignored when another user owns
it or others may write to it (then the catalog is simply built again).

With no config file and none of the variables set, the listing is the built-in catalog's alone:
that one ships in the package (``builtin_listing.json``, written by ``python -m
vec_inf_flows.catalog.listing_cache``), so even a first ``list`` builds nothing. It is used only
while its key (format, version, the built-in models.yaml's hash) matches; a test keeps it equal
to a fresh build.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vec_inf_flows import __version__, jobdir
from vec_inf_flows.catalog.sources import ENTRY_POINT_VARS, config_sources, file_stamp
from vec_inf_flows.errors import ConfigWarning

CACHE_FORMAT = 1
BUILTIN_PATH = str(Path(__file__).with_name("models.yaml"))
SHIPPED_PATH = Path(__file__).with_name("builtin_listing.json")
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
    if not sources and not any(env.get(name, "") for name in _ENV_VARIABLES):
        shipped = _read_shipped()
        if shipped is not None:
            return _noted(shipped)
    key = _key(env, [source.path for source in sources])
    path = jobdir.state_home() / "cache" / f"catalog-{key[:16]}.json"
    cached = _read(path, key)
    if cached is not None:
        return _noted(cached)
    listing, stamps = build_listing(env)  # warns about the notes itself
    _write(path, key, listing, stamps)
    return listing


def _noted(listing: Listing) -> Listing:
    for note in listing.notes:
        warnings.warn(note, ConfigWarning, stacklevel=3)
    return listing


def build_listing(env: Mapping[str, str]) -> tuple[Listing, list[tuple[str, tuple[int, int]]]]:
    """The listing built from the files and variables of ``env``, and the files' stamps."""
    from vec_inf_flows.catalog.loader import load_catalog

    catalog = load_catalog(environ=env)
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
    return listing, [(BUILTIN_PATH, file_stamp(BUILTIN_PATH)), *catalog.sources]


def _shipped_key() -> str:
    with open(BUILTIN_PATH, "rb") as handle:
        builtin = hashlib.sha256(handle.read()).hexdigest()
    material = {"format": CACHE_FORMAT, "version": __version__, "builtin": builtin}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read_shipped() -> Listing | None:
    try:
        with SHIPPED_PATH.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("key") != _shipped_key():
            return None
        return Listing(data["rows"], data["configs"], data["notes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def shipped_document() -> str:
    """What ``builtin_listing.json`` must hold: the built-in catalog with nothing set."""
    listing, _ = build_listing({})
    document = {"key": _shipped_key(), **asdict(listing)}
    return json.dumps(document, indent=1) + "\n"  # the build's order is the order shown


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


if __name__ == "__main__":  # regenerate the shipped listing after editing models.yaml
    SHIPPED_PATH.write_text(shipped_document(), encoding="utf-8")
    print(f"wrote {SHIPPED_PATH}")
