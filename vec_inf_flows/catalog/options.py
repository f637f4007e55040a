"""``LaunchOptions``: per-launch overrides, and how layers of them combine.

The fields, their types and descriptions come from ``option_declaration.LaunchOptionFields``;
this module adds validation of the types (values themselves are checked after merging, in
``resolve``, so a bad ``--time`` is reported exactly like a bad file value) and the one place
where layers of options meet: ``merge_options``. The whole precedence, lowest first, is
catalog < user file (both in ``load_catalog``) < cluster block < server block < call.
The server's API key is not a launch option: it is a secret and travels on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from vec_inf_flows.catalog.engine_args import parse_engine_args
from vec_inf_flows.catalog.option_declaration import LaunchOptionFields
from vec_inf_flows.errors import ConfigError, quote
from vec_inf_flows.spec import Engine

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_ENGINE_ARG_FIELDS: dict[str, Engine] = {"vllm_args": "vllm", "sglang_args": "sglang"}


class LaunchOptions(LaunchOptionFields, BaseModel):
    """Everything a user may override for one launch; ``None`` means "keep the catalog's"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def set_values(self) -> dict[str, Any]:
        """The options that are set, as keyword arguments (``VecInfClient.launch`` takes them)."""
        return self.model_dump(exclude_none=True)


OptionsLayer = LaunchOptions | Mapping[str, Any] | None


def merge_options(*layers: OptionsLayer) -> LaunchOptions:
    """Lay option layers over each other, lowest first: a later value replaces an earlier one,
    except ``env`` (merged per variable) and engine arguments (merged per flag)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        values = (
            layer.set_values()
            if isinstance(layer, LaunchOptions)
            else LaunchOptions.model_validate(layer).set_values()
        )
        for name, value in values.items():
            if name == "env":
                value = {**parse_env_option(merged.get("env")), **parse_env_option(value)}
            elif name in _ENGINE_ARG_FIELDS and name in merged:
                engine = _ENGINE_ARG_FIELDS[name]
                value = {
                    **parse_engine_args(merged[name], engine),
                    **parse_engine_args(value, engine),
                }
            merged[name] = value
    return LaunchOptions.model_validate(merged)


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
            raise ConfigError(
                f"--env: {quote(item)} is neither NAME=VALUE nor an existing env file."
            )
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
