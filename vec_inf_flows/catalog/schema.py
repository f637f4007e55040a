"""``ModelConfig``: one model's merged configuration, validated before anything is rendered.

Every string that reaches a job script is checked here: names are strict, Slurm values can hold
no whitespace or shell syntax, paths no newline or NUL. The anchor validated only its YAML file
and let launch options through unchecked; here the merged result is validated, whatever its
source.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from vec_inf_flows.catalog.engine_args import parse_engine_args
from vec_inf_flows.errors import ConfigError, quote
from vec_inf_flows.spec import Engine, MultiNodeMode

ENGINES: tuple[Engine, ...] = ("vllm", "sglang", "sim")
MODEL_TYPES = ("LLM", "VLM", "Text_Embedding", "Reward_Modeling", "OCR", "Audio")
ModelType = Literal["LLM", "VLM", "Text_Embedding", "Reward_Modeling", "OCR", "Audio"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.+-]+(?:,[A-Za-z0-9_.+-]+)*$")
_NODE_LIST = re.compile(r"^[A-Za-z0-9_.,\[\]-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMORY = re.compile(r"^[1-9][0-9]{0,7}[KMGT]$")
_TIME = re.compile(
    r"^(?:(?P<days>[0-9]{1,3})-)?(?P<h>[0-9]{1,3}):(?P<m>[0-5][0-9]):(?P<s>[0-5][0-9])$"
)
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]+$")


def _has_control(text: str) -> bool:
    return any(char in text for char in "\n\r\x00")


def _blank_to_none(value: object) -> object:
    """The anchor wrote ``qos: ""`` for "not set"; treat it the same as absent."""
    return None if isinstance(value, str) and not value.strip() else value


def _check_name(value: str) -> str:
    if len(value) > 128 or not NAME_PATTERN.match(value):
        raise ValueError("use letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def require_model_name(name: str) -> None:
    """Refuse a name that could not be a weights directory before looking it up anywhere."""
    try:
        _check_name(name)
    except ValueError as error:
        raise ConfigError(f"Invalid model name {quote(name)}: {error}.") from None


def _check_slurm_name(value: str) -> str:
    if not _SLURM_NAME.match(value):
        raise ValueError("not a valid Slurm name (letters, digits, '_', '.', '+', '-', commas)")
    return value


def _check_node_list(value: str) -> str:
    if not _NODE_LIST.match(value):
        raise ValueError("not a valid Slurm node list (e.g. gpu[001-004],gpu010)")
    return value


def _check_text(value: str) -> str:
    if _has_control(value):
        raise ValueError("must not contain a newline or NUL")
    return value


def _check_token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError("use letters, digits, '.', '_' or '-'")
    return value


def check_memory(value: str) -> str:
    normalised = value.strip().upper()
    if not _MEMORY.match(normalised):
        raise ValueError("expected a size with a unit, such as 512M, 64G or 1T")
    return normalised


def check_time(value: str) -> str:
    match = _TIME.match(value.strip())
    if match is None:
        raise ValueError("expected HH:MM:SS or D-HH:MM:SS")
    days = int(match.group("days") or 0)
    hours = int(match.group("h"))
    if match.group("days") is not None and hours > 23:
        raise ValueError("hours must be below 24 when days are given (D-HH:MM:SS)")
    if days == hours == int(match.group("m")) == int(match.group("s")) == 0:
        raise ValueError("a job needs a time limit above zero")
    return value.strip()


def _env_mapping(value: object) -> object:
    if not isinstance(value, dict):
        return value
    checked: dict[str, str] = {}
    for key, raw in value.items():
        name = str(key)
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid variable name {quote(name)}")
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        if _has_control(text):
            raise ValueError(f"value of {name} contains a newline or NUL")
        checked[name] = text
    return checked


def _engine_args_for(engine: Engine) -> Any:
    def parse(value: object) -> object:
        if value is None:
            return {}
        if not isinstance(value, str | dict):
            return value  # let the dict type report it
        try:
            return parse_engine_args(value, engine)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    return BeforeValidator(parse)


Name = Annotated[str, AfterValidator(_check_name)]
_SlurmName = Annotated[str, AfterValidator(_check_slurm_name)]
_NodeList = Annotated[str, AfterValidator(_check_node_list)]
_Text = Annotated[str, AfterValidator(_check_text)]
_Token = Annotated[str, AfterValidator(_check_token)]
OptionalName = Annotated[Name | None, BeforeValidator(_blank_to_none)]
OptionalSlurmName = Annotated[_SlurmName | None, BeforeValidator(_blank_to_none)]
OptionalNodeList = Annotated[_NodeList | None, BeforeValidator(_blank_to_none)]
OptionalText = Annotated[_Text | None, BeforeValidator(_blank_to_none)]
Memory = Annotated[str, AfterValidator(check_memory)]
SlurmTime = Annotated[str, AfterValidator(check_time)]
EnvMapping = Annotated[dict[str, str], BeforeValidator(_env_mapping)]


class ModelConfig(BaseModel):
    """One model after merging built-in catalog, user file, defaults and launch options."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True
    )

    model_name: Name
    model_family: Name
    model_variant: OptionalName = None
    model_type: ModelType
    gpus_per_node: int = Field(ge=0, le=64)
    num_nodes: int = Field(default=1, ge=1, le=1024)
    cpus_per_task: int = Field(default=16, ge=1, le=4096)
    mem_per_node: Memory = "64G"
    vocab_size: int = Field(ge=0, le=10_000_000)  # 0: unknown (a custom model launched ad hoc)
    time: SlurmTime = "08:00:00"
    partition: OptionalSlurmName = None
    qos: OptionalSlurmName = None
    account: OptionalSlurmName = None
    resource_type: OptionalSlurmName = None
    exclude: OptionalNodeList = None
    nodelist: OptionalNodeList = None
    work_dir: OptionalText = None
    log_dir: OptionalText = None
    model_weights_parent_dir: OptionalText = None
    hf_model: OptionalText = None
    venv: OptionalText = None  # a venv path, or "apptainer"/"singularity" for container mode
    container_image: OptionalText = None
    bind: OptionalText = None  # extra container binds, comma separated
    python: OptionalText = None
    data_type: Annotated[_Token | None, BeforeValidator(_blank_to_none)] = None
    engine: Engine = "vllm"
    # Several nodes: vLLM's own multi-node executor or a Ray cluster (None: native).
    multi_node_mode: Annotated[MultiNodeMode | None, BeforeValidator(_blank_to_none)] = None
    env: EnvMapping = Field(default_factory=dict)
    vllm_args: Annotated[dict[str, Any], _engine_args_for("vllm")] = Field(default_factory=dict)
    sglang_args: Annotated[dict[str, Any], _engine_args_for("sglang")] = Field(default_factory=dict)


# Keys a models.yaml entry may hold: every field but the name (which is the entry's key).
ENTRY_KEYS = frozenset(ModelConfig.model_fields) - {"model_name"}


def describe_validation_error(error: ValidationError) -> str:
    """The first problem as ``field 'value': reason`` (plus a count of the others)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    parts = [str(part) for part in first["loc"] if part != "[key]"]
    location = ".".join(part if len(part) <= 60 else quote(part) for part in parts)
    reason = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] == "missing":
        detail = f"{location}: required field is missing"
    elif isinstance(value, dict | list) or value is None:
        detail = f"{location}: {reason}"
    else:
        detail = f"{location} {quote(value)}: {reason}"
    more = len(problems) - 1
    return detail + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
