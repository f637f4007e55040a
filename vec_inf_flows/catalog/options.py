"""``LaunchOptions``: per-launch overrides, named as the anchor named them.

Values here are only typed, not validated: ``resolve`` lays them over the catalog entry and
validates the merged result, so a bad ``--time`` is reported exactly like a bad file value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from vec_inf_flows.errors import ConfigError

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


class LaunchOptions(BaseModel):
    """Everything a user may override for one launch; ``None`` means "keep the catalog's"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_family: str | None = None
    model_variant: str | None = None
    model_type: str | None = None  # only used for a model that is not in the catalog
    vocab_size: int | None = None
    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    time: str | None = None
    num_nodes: int | None = None
    multi_node_mode: str | None = None  # "native" or "ray" (several nodes only)
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_per_node: str | None = None
    resource_type: str | None = None
    exclude: str | None = None
    nodelist: str | None = None
    work_dir: str | None = None
    log_dir: str | None = None
    model_weights_parent_dir: str | None = None
    bind: str | None = None  # appended to the catalog's binds
    env: str | dict[str, str] | None = None  # "K=V,K2=V2" (or env-file paths), merged per name
    venv: str | None = None
    engine: str | None = None
    vllm_args: str | dict[str, Any] | None = None
    sglang_args: str | dict[str, Any] | None = None
    api_key: SecretStr | None = None
    container_image: str | None = None
    hf_model: str | None = None
    python: str | None = None
    data_type: str | None = None


def parse_env_option(value: str | dict[str, str] | None) -> dict[str, str]:
    """``K=V,K2=V2`` (values keep ``=`` and commas that are not followed by ``NAME=``) or a dict.

    An item without ``=`` is a file of ``K=V`` lines, as the anchor allowed.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(name): str(text) for name, text in value.items()}
    parsed: dict[str, str] = {}
    pending: list[str] = []
    for item in value.split(","):
        match = _ASSIGNMENT.match(item)
        if match is not None:
            pending = [match.group(1), match.group(2)]
            parsed[pending[0]] = pending[1]
        elif not item.strip():
            continue
        elif "=" not in item and Path(item.strip()).is_file():
            parsed.update(_read_env_file(Path(item.strip())))
            pending = []
        elif pending:  # "PATHS=a,b": a comma inside a value
            pending[1] = f"{pending[1]},{item}"
            parsed[pending[0]] = pending[1]
        else:
            raise ConfigError(f"--env: {item!r} is neither NAME=VALUE nor an existing env file.")
    return parsed


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read env file {path}: {error}.") from None
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            raise ConfigError(f"{path}:{number}: expected NAME=VALUE.")
        text = match.group(2).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1]
        values[match.group(1)] = text
    return values
