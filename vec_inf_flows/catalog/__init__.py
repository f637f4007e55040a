"""The model catalog: built-in models.yaml, the user's file, merging, validation -> LaunchSpec."""

from vec_inf_flows.catalog.engine_args import merge_engine_args, parse_engine_args, to_argv
from vec_inf_flows.catalog.listing import ModelInfo, list_models, model_config_dump
from vec_inf_flows.catalog.loader import Catalog, load_catalog
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.catalog.resolve import resolve, resolve_batch
from vec_inf_flows.catalog.schema import ModelConfig

__all__ = [
    "Catalog",
    "LaunchOptions",
    "ModelConfig",
    "ModelInfo",
    "list_models",
    "load_catalog",
    "merge_engine_args",
    "model_config_dump",
    "parse_engine_args",
    "resolve",
    "resolve_batch",
    "to_argv",
]
