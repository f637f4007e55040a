"""The model catalog: built-in models.yaml, the user's files, merging, validation -> LaunchSpec.

Names load on first use: ``list`` reads a precompiled listing (listing_cache) and must not pay
for YAML and pydantic, which the rest of the catalog needs; ``catalog.option_declaration``
(what the CLI builds its flags from) imports neither either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vec_inf_flows.catalog.engine_args import merge_engine_args, parse_engine_args, to_argv
    from vec_inf_flows.catalog.listing import ModelInfo, list_models, model_config_dump
    from vec_inf_flows.catalog.loader import Catalog, load_catalog
    from vec_inf_flows.catalog.options import LaunchOptions, merge_options
    from vec_inf_flows.catalog.resolve import resolve, resolve_batch
    from vec_inf_flows.catalog.schema import ModelConfig

_HOMES = {
    "merge_engine_args": "engine_args",
    "parse_engine_args": "engine_args",
    "to_argv": "engine_args",
    "ModelInfo": "listing",
    "list_models": "listing",
    "model_config_dump": "listing",
    "Catalog": "loader",
    "load_catalog": "loader",
    "LaunchOptions": "options",
    "merge_options": "options",
    "resolve": "resolve",
    "resolve_batch": "resolve",
    "ModelConfig": "schema",
}

__all__ = [
    "Catalog",
    "LaunchOptions",
    "ModelConfig",
    "ModelInfo",
    "list_models",
    "load_catalog",
    "merge_engine_args",
    "merge_options",
    "model_config_dump",
    "parse_engine_args",
    "resolve",
    "resolve_batch",
    "to_argv",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'vec_inf_flows.catalog' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vec_inf_flows.catalog.{home}"), name)
