"""Checks on a merged model config before anything is submitted, one clear line each.

Each of these mistakes used to cost a queue wait (or a job that starts and dies): missing
weights, a GPU count no parallel layout can use, limits and required fields a site set in its
environment.yaml. Missing weights are a warning (they may be mounted only on compute nodes, or
be about to be copied); ``strict`` makes them an error.
"""

from __future__ import annotations

import os
import warnings

from vec_inf_flows.catalog.schema import ModelConfig
from vec_inf_flows.catalog.site import SiteRules
from vec_inf_flows.errors import ConfigError, ConfigWarning

_HOW_TO_FILL = {
    "account": "pass -A/--account",
    "work_dir": "pass -D/--work-dir",
    "partition": "pass --partition",
    "qos": "pass --qos",
}


def check_gpu_count(config: ModelConfig) -> None:
    """Tensor and pipeline parallel sizes come in powers of two; so must the GPUs asked for."""
    total = config.gpus_per_node * config.num_nodes
    for count, what in ((config.gpus_per_node, "GPUs per node"), (total, "GPUs in total")):
        if count > 0 and count & (count - 1):
            raise ConfigError(
                f"Model '{config.model_name}': {count} {what}"
                f" ({config.gpus_per_node}/node x {config.num_nodes} nodes): use a power of"
                " two (1, 2, 4, 8 ...), as tensor x pipeline parallel layouts need."
            )


def check_site_rules(config: ModelConfig, rules: SiteRules) -> None:
    for field, limit in rules.limits.items():
        value = getattr(config, field, None)
        if isinstance(value, int) and value > limit:
            raise ConfigError(
                f"Model '{config.model_name}': {field} {value} is above this site's limit"
                f" of {limit} (environment.yaml limits)."
            )
    for field, variable in rules.required.items():
        if not getattr(config, field, None):
            how = _HOW_TO_FILL.get(field, f"set {field}")
            raise ConfigError(
                f"Model '{config.model_name}': {field} is required on this site"
                f" (environment.yaml required_args): {how} or set {variable}."
            )


def check_weights(config: ModelConfig, model_path: str, *, strict: bool) -> None:
    """Local weights must be where the job will look; a hub id is downloaded by the engine."""
    if config.engine == "sim" or not os.path.isabs(model_path) or os.path.isdir(model_path):
        return
    message = (
        f"Model '{config.model_name}': no weights at {model_path}; the server will fail to"
        " start unless they are there when the job runs (or pass --hf-model to download)."
    )
    if strict:
        raise ConfigError(message.replace("; the server", " (--strict); the server"))
    warnings.warn(message, ConfigWarning, stacklevel=3)
