"""Reading one ``models.yaml``-format file into checked raw sections.

Only the shape is checked here (which keys exist, where); values are validated after merging,
so a user file may name just the one field it changes. Unknown keys are not fatal (another
tool's file must still load) but never silent: each one becomes a warning naming it, where the
anchor dropped typos such as ``mem-per-node`` without a word.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vec_inf_flows.catalog.schema import ENTRY_KEYS, NAME_PATTERN
from vec_inf_flows.catalog.yaml_load import parse_yaml
from vec_inf_flows.errors import ConfigError, quote

# Keys a ``defaults:`` section may set for every model (see loader.py for precedence).
SITE_KEYS = frozenset(
    {
        "partition",
        "qos",
        "account",
        "resource_type",
        "exclude",
        "nodelist",
        "work_dir",
        "log_dir",
        "model_weights_parent_dir",
        "venv",
        "container_image",
        "bind",
        "python",
        "engine",
    }
)
SIZING_KEYS = frozenset({"cpus_per_task", "mem_per_node", "time", "env"})
DEFAULT_KEYS = SITE_KEYS | SIZING_KEYS
_TOP_LEVEL_KEYS = ("models", "defaults")


@dataclass(frozen=True)
class CatalogFile:
    """The raw ``models:`` and ``defaults:`` sections of one file, shape-checked."""

    label: str  # how errors name the file
    models: dict[str, dict[str, object]] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was ignored or read differently: shown as warnings


def read_config_document(path: str | Path, what: str = "config file") -> object:
    """A config file's YAML document; any problem is one ``ConfigError`` line naming it."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Cannot read {what} {label}: no such file.") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"Cannot read {what} {label}: {reason}.") from None
    return parse_yaml(text, label)


def read_catalog_file(path: str | Path, what: str = "config file") -> CatalogFile:
    """Read and shape-check a models file."""
    return catalog_from_document(read_config_document(path, what), str(path))


def catalog_from_document(document: object, label: str) -> CatalogFile:
    if document is None:
        return CatalogFile(label)
    if not isinstance(document, dict):
        raise ConfigError(f"{label}: expected a mapping with a 'models:' section.")
    notes: list[str] = []
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            notes.append(
                f"{label}: unknown top-level key {quote(key)} ignored"
                f"{_hint(str(key), _TOP_LEVEL_KEYS)} (expected 'models' and 'defaults')."
            )
    models = _mapping(document.get("models"), f"{label}: 'models'")
    defaults = _known_keys(
        _mapping(document.get("defaults"), f"{label}: 'defaults'"),
        DEFAULT_KEYS,
        f"{label}: defaults",
        notes,
    )
    entries: dict[str, dict[str, object]] = {}
    for name, entry in models.items():
        entries[_model_name(name, label)] = _entry(str(name), entry, label, notes)
    return CatalogFile(label, entries, defaults, tuple(notes))


def _known_keys(
    section: dict[Any, Any], known: frozenset[str], where: str, notes: list[str]
) -> dict[str, object]:
    """The keys we understand; others are noted, not fatal, so another tool's file still loads.

    A known key spelt with dashes (vec-inf's own file has ``mem-per-node``, which vec-inf
    silently dropped) is read as the key it names.
    """
    kept: dict[str, object] = {}
    for key, value in section.items():
        text = str(key)
        if text in known:
            kept[text] = value
            continue
        spelled = text.replace("-", "_")
        if spelled in known and spelled not in section:
            kept[spelled] = value
            notes.append(f"{where}: key {quote(text)} read as {spelled!r}.")
            continue
        notes.append(f"{where}: unknown key {quote(text)} ignored{_hint(text, known)}.")
    return kept


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping.")
    return value


def _model_name(name: object, label: str) -> str:
    text = str(name)
    if not isinstance(name, str | int) or not NAME_PATTERN.match(text) or len(text) > 128:
        raise ConfigError(
            f"{label}: invalid model name {quote(text)}: use letters, digits, '.', '_' or '-',"
            " starting with a letter or digit."
        )
    return text


def _entry(name: str, entry: object, label: str, notes: list[str]) -> dict[str, object]:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise ConfigError(f"{label}: model '{name}': expected a mapping of settings.")
    if "model_name" in entry:  # written by the anchor's ``list --json-mode`` dumps
        value = entry["model_name"]
        if str(value) != name:
            raise ConfigError(
                f"{label}: model '{name}': model_name {quote(value)} differs from its key."
            )
        entry = {key: value for key, value in entry.items() if key != "model_name"}
    return _known_keys(entry, ENTRY_KEYS, f"{label}: model '{name}'", notes)


def _hint(key: str, known: object) -> str:
    candidates = sorted(known)  # type: ignore[call-overload]
    exact = key.replace("-", "_").lower()
    if exact in candidates:
        return f" (did you mean {exact!r}?)"
    close = difflib.get_close_matches(exact, candidates, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
