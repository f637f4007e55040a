"""From a model name and launch options to a validated ``LaunchSpec``.

Options are laid over the merged catalog entry and the result is validated once more, so a
value is checked wherever it came from. The anchor's engine quirks are fixed: an unknown
engine or args for the wrong engine are a one-line ``ConfigError``, never a ``KeyError``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from pydantic import SecretStr

from vec_inf_flows.catalog.checks import check_gpu_count, check_site_rules, check_weights
from vec_inf_flows.catalog.engine_args import split_top_level
from vec_inf_flows.catalog.loader import Catalog, load_catalog
from vec_inf_flows.catalog.merge import MergedEntry
from vec_inf_flows.catalog.multinode import select_multi_node_mode
from vec_inf_flows.catalog.options import LaunchOptions, parse_env_option
from vec_inf_flows.catalog.schema import ENGINES, ModelConfig, require_model_name
from vec_inf_flows.catalog.site import SiteRules
from vec_inf_flows.errors import ConfigError, ModelNotFoundError, quote
from vec_inf_flows.spec import (
    ArgValue,
    ContainerRuntime,
    ContainerSpec,
    Engine,
    LaunchSpec,
    SlurmResources,
)

OPTIONS_SOURCE = "launch options"
API_KEY_VARIABLE = "VEC_INF_API_KEY"
CONTAINER_RUNTIMES: tuple[ContainerRuntime, ...] = ("apptainer", "singularity")
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# Options with their own rules, and options about the launch itself (a config file to read,
# checks to harden); every other option is copied as it is onto the model's settings.
_SPECIAL_FIELDS = frozenset(
    {"engine", "model_type", "vocab_size", "bind", "env", "vllm_args", "sglang_args"}
    | {"config", "strict"}
)
_PLAIN_FIELDS = tuple(name for name in LaunchOptions.model_fields if name not in _SPECIAL_FIELDS)


def resolve(
    model_name: str,
    options: LaunchOptions | None = None,
    catalog: Catalog | None = None,
    api_key: SecretStr | str | None = None,
) -> LaunchSpec:
    """The launch spec for one server: catalog entry, then options, validated after merging.

    ``api_key`` is the key the server will require (kept in the spec's secrets only).
    """
    require_model_name(model_name)
    options = options or LaunchOptions()
    if catalog is None:
        catalog = load_catalog(extra_files=[options.config] if options.config else [])
    entry = _base_entry(model_name, options, catalog)
    engine = select_engine(cast(Engine, entry.values.get("engine", "vllm")), options)
    entry.apply(_options_layer(options, engine, entry), OPTIONS_SOURCE, model=model_name)
    config = entry.validate(model_name)
    if config.engine == "sim" and options.venv is None and config.venv is not None:
        # The simulator runs from this interpreter; a model's engine venv (the real vLLM's)
        # is not needed and may not exist on a machine that only runs the simulator.
        config = config.model_copy(update={"venv": None})
    return build_spec(config, options, catalog.rules, api_key)


def resolve_batch(
    model_names: Sequence[str],
    batch_config_path: str | Path | None = None,
    options: LaunchOptions | None = None,
) -> list[LaunchSpec]:
    """Specs for one heterogeneous job: single-node servers sharing one log directory.

    ``batch_config_path`` is merged over the built-in catalog and ``$VEC_INF_CONFIG``.
    """
    if not model_names:
        raise ConfigError("Batch launch needs at least one model name.")
    extra = [batch_config_path] if batch_config_path is not None else []
    if options is not None and options.config:
        extra.insert(0, options.config)
    catalog = load_catalog(extra_files=extra)
    specs = [resolve(name, options, catalog) for name in model_names]
    for spec in specs:
        if spec.resources.num_nodes != 1:
            raise ConfigError(
                f"Batch launch supports single-node models only; '{spec.model_name}' needs"
                f" {spec.resources.num_nodes} nodes (launch it on its own with `launch`)."
            )
    log_dirs = sorted({spec.log_dir for spec in specs})
    if len(log_dirs) > 1:
        raise ConfigError(f"Batch models must share one log_dir; got {', '.join(log_dirs)}.")
    return specs


def select_engine(configured: Engine, options: LaunchOptions) -> Engine:
    """The anchor's rules without its crashes; ``sim`` takes vLLM's arguments."""
    requested = options.engine.strip().lower() if options.engine is not None else None
    if requested is not None and requested not in ENGINES:
        raise ConfigError(
            f"Unknown engine {quote(options.engine)}: choose one of {', '.join(ENGINES)}."
        )
    if options.vllm_args is not None and options.sglang_args is not None:
        raise ConfigError("Give engine arguments for one engine: vllm_args or sglang_args.")
    given: str | None = None
    if options.vllm_args is not None:
        given = "vllm"
    elif options.sglang_args is not None:
        given = "sglang"
    if requested is not None:
        engine: Engine = requested
        if given is not None and args_family(engine) != given:
            raise ConfigError(
                f"Engine {engine} does not take {given}_args; use"
                f" {args_family(engine)}_args or choose engine {given}."
            )
        return engine
    if given is not None and args_family(configured) != given:
        return cast(Engine, given)
    return configured


def args_family(engine: Engine) -> str:
    return "sglang" if engine == "sglang" else "vllm"


def build_spec(
    config: ModelConfig,
    options: LaunchOptions,
    rules: SiteRules | None = None,
    api_key: SecretStr | str | None = None,
) -> LaunchSpec:
    engine = config.engine
    args: dict[str, ArgValue] = dict(config.sglang_args if engine == "sglang" else config.vllm_args)
    if config.data_type and config.data_type != "auto":
        args.setdefault("--dtype", config.data_type)
    check_gpu_count(config)
    check_parallel_layout(config, args)
    check_site_rules(config, rules or SiteRules())
    multi_node_mode = select_multi_node_mode(config, args)
    model_path = _model_path(config)
    check_weights(config, model_path, strict=bool(options.strict))
    env, secret_env = split_secrets(config.env)
    if api_key is not None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        secret_env = [(n, v) for n, v in secret_env if n != API_KEY_VARIABLE]
        secret_env.append((API_KEY_VARIABLE, key))
    venv, container = _environment(config, model_path)
    return LaunchSpec(
        model_name=config.model_name,
        model_family=config.model_family,
        model_variant=config.model_variant,
        model_type=config.model_type,
        vocab_size=config.vocab_size,
        resources=SlurmResources(
            time=config.time,
            num_nodes=config.num_nodes,
            gpus_per_node=config.gpus_per_node,
            cpus_per_task=config.cpus_per_task,
            mem_per_node=config.mem_per_node,
            partition=config.partition,
            qos=config.qos,
            account=config.account,
            resource_type=config.resource_type,
            exclude=config.exclude,
            nodelist=config.nodelist,
            work_dir=_expand(config.work_dir) if config.work_dir else None,
        ),
        engine=engine,
        model_path=model_path,
        log_dir=_expand(config.log_dir or "~/.vec-inf-logs"),
        engine_args=tuple(args.items()),
        venv=venv,
        container=container,
        env=tuple(env),
        secret_env=tuple(secret_env),
        python=config.python or (sys.executable if engine == "sim" else "python3"),
        multi_node_mode=multi_node_mode,
    )


def check_parallel_layout(config: ModelConfig, args: dict[str, ArgValue]) -> None:
    """GPUs per node x nodes must equal TP x PP (x DP) whenever TP is given."""
    total = config.gpus_per_node * config.num_nodes
    if total == 0 or "--tensor-parallel-size" not in args:
        return
    sizes = {
        flag: _positive_int(args.get(flag, 1), flag)
        for flag in ("--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size")
    }
    product = 1
    for size in sizes.values():
        product *= size
    if product != total:
        layout = " x ".join(f"{flag.removeprefix('--')} {size}" for flag, size in sizes.items())
        raise ConfigError(
            f"Model '{config.model_name}': {config.gpus_per_node} GPUs/node x"
            f" {config.num_nodes} nodes = {total} GPUs, but {layout} = {product}."
        )


def split_secrets(env: dict[str, str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Variables whose names look secret go to the 0600 secrets file, never the script."""
    public = [(name, value) for name, value in env.items() if not _SECRET_NAME.search(name)]
    secret = [(name, value) for name, value in env.items() if _SECRET_NAME.search(name)]
    return public, secret


def _base_entry(model_name: str, options: LaunchOptions, catalog: Catalog) -> MergedEntry:
    if model_name in catalog.models:
        return catalog.entry(model_name)
    entry = catalog.template.copy()
    parent = options.model_weights_parent_dir or entry.values.get("model_weights_parent_dir")
    weights = Path(_expand(str(parent))) / model_name if parent else None
    weights_exist = weights is not None and weights.is_dir()
    if options.model_family is None or not (weights_exist or options.hf_model):
        raise ModelNotFoundError(model_name, catalog.suggest(model_name))
    entry.apply(
        {
            "model_type": options.model_type or "LLM",
            "gpus_per_node": 1 if options.gpus_per_node is None else options.gpus_per_node,
            "vocab_size": options.vocab_size or 0,
        },
        OPTIONS_SOURCE,
    )
    return entry


def _options_layer(options: LaunchOptions, engine: Engine, entry: MergedEntry) -> dict[str, object]:
    layer: dict[str, object] = {
        name: getattr(options, name) for name in _PLAIN_FIELDS if getattr(options, name) is not None
    }
    if options.engine is not None or engine != entry.values.get("engine"):
        layer["engine"] = engine
    if options.model_type is not None:
        layer["model_type"] = options.model_type
    if options.vocab_size is not None:
        layer["vocab_size"] = options.vocab_size
    if options.bind is not None:
        existing = entry.values.get("bind")
        layer["bind"] = f"{existing},{options.bind}" if existing else options.bind
    if options.env is not None:
        layer["env"] = parse_env_option(options.env)
    arguments = options.vllm_args if options.vllm_args is not None else options.sglang_args
    if arguments is not None:
        layer[f"{args_family(engine)}_args"] = arguments
    return layer


def _model_path(config: ModelConfig) -> str:
    parent = config.model_weights_parent_dir
    local = Path(_expand(parent)) / config.model_name if parent else None
    if config.hf_model and (local is None or not local.is_dir()):
        return config.hf_model  # local weights win, as in the anchor
    if local is None:
        raise ConfigError(f"Model '{config.model_name}': set model_weights_parent_dir or hf_model.")
    return str(local)


def _environment(config: ModelConfig, model_path: str) -> tuple[str | None, ContainerSpec | None]:
    venv = config.venv
    if venv is None or venv.lower() not in CONTAINER_RUNTIMES:
        return (_expand(venv) if venv else None), None
    if not config.container_image:
        raise ConfigError(
            f"Model '{config.model_name}': venv {venv} means container mode;"
            " set container_image to the image to run."
        )
    binds = split_top_level(config.bind or "")
    if os.path.isabs(model_path) and model_path not in binds:
        binds.append(model_path)
    runtime = cast(ContainerRuntime, venv.lower())
    image = os.path.expanduser(config.container_image)  # may be a URI such as docker://...
    return None, ContainerSpec(runtime, image, tuple(binds))


def _positive_int(value: ArgValue, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{flag} must be a positive integer, not {quote(value)}.")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{flag} must be a positive integer, not {quote(value)}.") from None
    if number < 1:
        raise ConfigError(f"{flag} must be a positive integer, not {quote(value)}.")
    return number


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))
