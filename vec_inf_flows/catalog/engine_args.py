"""Engine flags: parsed once into ``{long flag: value}``, merged per flag, rendered as argv.

The anchor split ``--vllm-args`` on every comma and every ``=`` and turned YAML ``false`` into an
enabled flag. Here commas only separate flags at bracket/quote depth 0, a value keeps everything
after the first ``=``, JSON values stay JSON, and ``False`` renders as ``--no-FLAG``. Values are
otherwise kept verbatim: the script renderer quotes them, so only newline and NUL are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from vec_inf_flows.errors import ConfigError, quote
from vec_inf_flows.spec import ArgValue, Engine

EngineArgs = dict[str, ArgValue]

# A flag after alias expansion: "--max-model-len", "--compilation-config.mode".
_LONG_FLAG = re.compile(r"^--[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_.-]+)?$")
_INTEGER = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_OPTIMIZATION_LEVEL = re.compile(r"^-O([0-9]*)$")

# vLLM 0.32 short options (``vllm serve --help=all``); ``-O`` is handled on its own.
_VLLM_ALIASES = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-dpl": "--data-parallel-size-local",
    "-dpa": "--data-parallel-address",
    "-dpp": "--data-parallel-rpc-port",
    "-dpr": "--data-parallel-rank",
    "-dpb": "--data-parallel-backend",
    "-dph": "--data-parallel-hybrid-lb",
    "-dpe": "--data-parallel-external-lb",
    "-dcp": "--decode-context-parallel-size",
    "-pcp": "--prefill-context-parallel-size",
    "-ep": "--enable-expert-parallel",
    "-cc": "--compilation-config",
    "-q": "--quantization",
    "-n": "--nnodes",
    "-r": "--node-rank",
}
# SGLang spells its parallel sizes with long abbreviations.
_SGLANG_ALIASES = {
    "--tp": "--tensor-parallel-size",
    "--tp-size": "--tensor-parallel-size",
    "--pp": "--pipeline-parallel-size",
    "--pp-size": "--pipeline-parallel-size",
    "--dp": "--data-parallel-size",
    "--dp-size": "--data-parallel-size",
    "--ep": "--expert-parallel-size",
    "--ep-size": "--expert-parallel-size",
    "-q": "--quantization",
}


def parse_engine_args(
    source: str | Mapping[str, object] | None, engine: Engine = "vllm"
) -> EngineArgs:
    """Parse the guide's comma string or a YAML mapping into ordered ``{long flag: value}``."""
    if source is None:
        return {}
    if isinstance(source, str):
        pairs = [_split_item(item) for item in split_top_level(source)]
    elif isinstance(source, Mapping):
        pairs = [(str(key), value) for key, value in source.items()]
    else:
        raise ConfigError(
            f"Engine arguments must be a 'k=v,...' string or a mapping, not {quote(source)}."
        )
    parsed: EngineArgs = {}
    for raw_flag, raw_value in pairs:
        flag, value = _normalise(raw_flag, raw_value, engine)
        parsed.pop(flag, None)  # a repeated flag moves to its last position
        parsed[flag] = value
    return parsed


def merge_engine_args(*layers: Mapping[str, ArgValue]) -> EngineArgs:
    """Later layers win per flag; a flag keeps its first position."""
    merged: EngineArgs = {}
    for layer in layers:
        merged.update(layer)
    return merged


def to_argv(args: Mapping[str, ArgValue] | Iterable[tuple[str, ArgValue]]) -> list[str]:
    """Render flags as argv items: bare flags, ``--no-X`` for False, JSON for mappings."""
    items = args.items() if isinstance(args, Mapping) else args
    argv: list[str] = []
    for flag, value in items:
        if value is True:
            argv.append(flag)
        elif value is False:
            argv.append("--no-" + flag.removeprefix("--"))
        else:
            argv.extend([flag, render_value(value)])
    return argv


def render_value(value: ArgValue) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` outside brackets and quotes; blank items are dropped."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth = max(depth - 1, 0)
        elif char == separator and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _split_item(item: str) -> tuple[str, object]:
    """``--k=v``, ``--k v`` or a bare ``--flag``; the value is all after the first separator."""
    match = re.match(r"^(-[^=\s]*)(?:=|\s+)(.*)$", item, re.DOTALL)
    if match is None:
        return item, True
    return match.group(1), _scalar_from_text(match.group(2).strip())


def _scalar_from_text(text: str) -> object:
    """Typed value from the string form: ints, booleans and JSON become real values."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.match(text):
        return int(text)
    return text


def _normalise(raw_flag: str, raw_value: object, engine: Engine) -> tuple[str, ArgValue]:
    flag = raw_flag.strip()
    if _has_control(flag):
        raise ConfigError(f"Engine flag {quote(flag)} contains a newline or NUL.")
    level = _OPTIMIZATION_LEVEL.match(flag)
    if level is not None or flag == "-O":
        if engine == "sglang":
            raise ConfigError("-O (optimization level) is only supported for vLLM.")
        suffix = level.group(1) if level is not None else ""
        if suffix:
            if raw_value is not True:
                given = f"{flag}={raw_value}"
                raise ConfigError(f"Give the optimization level once: {quote(given)}.")
            raw_value = int(suffix)
        return "--optimization-level", _value(flag, raw_value)
    flag = _expand_alias(flag, engine)
    if not flag.startswith("--"):
        raise ConfigError(f"Unknown engine flag {quote(flag)}: use its long form (--name).")
    name, dot, rest = flag.partition(".")
    flag = name.replace("_", "-") + dot + rest  # vLLM treats dashes and underscores alike
    if flag.startswith("--no-") and isinstance(raw_value, bool):
        flag, raw_value = "--" + flag.removeprefix("--no-"), not raw_value
    if not _LONG_FLAG.match(flag):
        raise ConfigError(f"Invalid engine flag {quote(raw_flag)}.")
    return flag, _value(flag, raw_value)


def _expand_alias(flag: str, engine: Engine) -> str:
    aliases = _SGLANG_ALIASES if engine == "sglang" else _VLLM_ALIASES
    name, dot, rest = flag.partition(".")
    return aliases.get(name, name) + dot + rest


def _value(flag: str, value: object) -> ArgValue:
    if value is None:  # YAML "--enforce-eager:" with nothing after it
        return True
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if _has_control(value):
            raise ConfigError(f"Value of {flag} contains a newline or NUL.")
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                decoded = json.loads(stripped)
            except ValueError:
                raise ConfigError(f"Value of {flag} is not valid JSON: {quote(stripped)}") from None
            return _json_value(flag, decoded)
        return value
    if isinstance(value, dict | list):
        return _json_value(flag, value)
    raise ConfigError(f"Unsupported value for {quote(flag)}: {quote(value)}.")


def _json_value(flag: str, value: object) -> ArgValue:
    if not isinstance(value, dict | list):
        raise ConfigError(f"Value of {flag} must be a JSON object or list.")
    try:
        round_trip = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise ConfigError(f"Value of {flag} cannot be written as JSON: {quote(value)}") from None
    if isinstance(round_trip, dict):
        return dict(round_trip)
    return list(round_trip)


def _has_control(text: str) -> bool:
    return "\n" in text or "\r" in text or "\x00" in text
