"""The model catalog: built-in models.yaml, the user's files, merging, validation -> LaunchSpec.

Names load on first use: ``list`` reads a precompiled listing (listing_cache) and must not pay
for YAML and pydantic, which the rest of the catalog needs; ``catalog.option_declaration``
(what the CLI builds its flags from) imports neither either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vec_inf_flows._lazy import lazy_exports

if TYPE_CHECKING:
    from vec_inf_flows.catalog.engine_args import merge_engine_args, parse_engine_args, to_argv
    from vec_inf_flows.catalog.listing import ModelInfo, list_models, model_config_dump
    from vec_inf_flows.catalog.loader import Catalog, load_catalog
    from vec_inf_flows.catalog.options import LaunchOptions, merge_options
    from vec_inf_flows.catalog.resolve import resolve, resolve_batch
    from vec_inf_flows.catalog.schema import ModelConfig

_HOMES = {
    "merge_engine_args": "vec_inf_flows.catalog.engine_args",
    "parse_engine_args": "vec_inf_flows.catalog.engine_args",
    "to_argv": "vec_inf_flows.catalog.engine_args",
    "ModelInfo": "vec_inf_flows.catalog.listing",
    "list_models": "vec_inf_flows.catalog.listing",
    "model_config_dump": "vec_inf_flows.catalog.listing",
    "Catalog": "vec_inf_flows.catalog.loader",
    "load_catalog": "vec_inf_flows.catalog.loader",
    "LaunchOptions": "vec_inf_flows.catalog.options",
    "merge_options": "vec_inf_flows.catalog.options",
    "resolve": "vec_inf_flows.catalog.resolve",
    "resolve_batch": "vec_inf_flows.catalog.resolve",
    "ModelConfig": "vec_inf_flows.catalog.schema",
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


__getattr__ = lazy_exports(__name__, _HOMES)
