"""vec-inf's cluster file, ``$VEC_INF_CONFIG_DIR/environment.yaml``, read as site defaults.

A site that configured vec-inf keeps its file: ``default_args`` become ``defaults:`` (the same
precedence), ``limits`` and ``required_args`` become pre-submit checks, the image paths become
the container image. What has no counterpart here is named in a warning, never silently
dropped, and never makes the file fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vec_inf_flows.errors import ConfigError, quote

# default_args keys that are already ours under the same name.
_DEFAULT_ARGS = frozenset(
    {
        "cpus_per_task",
        "mem_per_node",
        "time",
        "qos",
        "partition",
        "resource_type",
        "exclude",
        "nodelist",
        "bind",
        "venv",
        "log_dir",
        "model_weights_parent_dir",
        "account",
        "work_dir",
    }
)
_LIMITS = {
    "max_gpus_per_node": "gpus_per_node",
    "max_num_nodes": "num_nodes",
    "max_cpus_per_task": "cpus_per_task",
}
# Understood and deliberately not needed: model types are built in, allowed_values were never
# enforced by vec-inf (its fields accept any string), image_path is its legacy spelling.
# python_version names the interpreter vec-inf starts SGLang with; our job runs python3 from
# the model's venv or container.
_QUIETLY_UNUSED = frozenset({"model_types", "allowed_values", "python_version"})
_QUIET_PATHS = frozenset({"image_path"})


@dataclass(frozen=True)
class SiteRules:
    """Checks a site asked for: upper limits per field, and fields a launch must set."""

    limits: dict[str, int] = field(default_factory=dict)  # field -> largest allowed value
    required: dict[str, str] = field(default_factory=dict)  # field -> env var that may fill it

    def merged(self, other: SiteRules) -> SiteRules:
        return SiteRules({**self.limits, **other.limits}, {**self.required, **other.required})


@dataclass(frozen=True)
class SiteFile:
    label: str
    defaults: dict[str, object]
    rules: SiteRules
    model_files: tuple[str, ...] = ()  # paths.cached_model_config_path, when set
    notes: tuple[str, ...] = ()


def site_from_document(document: object, label: str) -> SiteFile:
    if document is None:
        return SiteFile(label, {}, SiteRules())
    if not isinstance(document, dict):
        raise ConfigError(f"{label}: expected a mapping (vec-inf's environment.yaml format).")
    notes: list[str] = []
    defaults: dict[str, object] = {}
    limits: dict[str, int] = {}
    required: dict[str, str] = {}
    model_files: list[str] = []
    for key, value in document.items():
        section = _section(value, f"{label}: {key}") if key not in _QUIETLY_UNUSED else {}
        if key == "default_args":
            defaults.update(_default_args(section, label, notes))
        elif key == "limits":
            limits.update(_limits(section, label, notes))
        elif key == "required_args":
            required.update({str(name): str(var) for name, var in section.items() if var})
        elif key == "paths":
            _paths(section, label, defaults, model_files, notes)
        elif key == "containerization":
            _containerization(section, label, notes)
        elif key not in _QUIETLY_UNUSED:
            notes.append(f"{label}: unknown section {quote(key)} ignored.")
    return SiteFile(label, defaults, SiteRules(limits, required), tuple(model_files), tuple(notes))


def _section(value: object, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping.")
    return value


def _default_args(section: dict[Any, Any], label: str, notes: list[str]) -> dict[str, object]:
    kept: dict[str, object] = {}
    for key, value in section.items():
        name = str(key)
        if name in _DEFAULT_ARGS:
            if value not in (None, ""):  # vec-inf writes "" for "not set"
                kept[name] = value
        elif name == "data_type":
            if value not in (None, "", "auto"):
                notes.append(
                    f"{label}: default_args.data_type {quote(value)} ignored: pass --dtype in"
                    " a model's vllm_args instead."
                )
        else:
            notes.append(f"{label}: default_args: unknown key {quote(name)} ignored.")
    return kept


def _limits(section: dict[Any, Any], label: str, notes: list[str]) -> dict[str, int]:
    kept: dict[str, int] = {}
    for key, value in section.items():
        name = _LIMITS.get(str(key))
        if name is None:
            notes.append(f"{label}: limits: unknown key {quote(key)} ignored.")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{label}: limits.{key} must be a positive integer.")
        else:
            kept[name] = value
    return kept


def _paths(
    section: dict[Any, Any],
    label: str,
    defaults: dict[str, object],
    model_files: list[str],
    notes: list[str],
) -> None:
    for key, value in section.items():
        name = str(key)
        if not value or name in _QUIET_PATHS:
            continue
        if name == "vllm_image_path":
            defaults["container_image"] = str(value)
        elif name == "cached_model_config_path":
            model_files.append(str(value))
        elif name == "sglang_image_path":
            notes.append(
                f"{label}: paths.sglang_image_path ignored: SGLang models take the one"
                " container image; set container_image in their entries."
            )
        else:
            notes.append(f"{label}: paths: unknown key {quote(name)} ignored.")


def _containerization(section: dict[Any, Any], label: str, notes: list[str]) -> None:
    command = section.get("module_load_cmd")
    if command:
        notes.append(
            f"{label}: containerization.module_load_cmd {quote(command)} is not run by the"
            " job: run it before launching (the job inherits your shell's PATH)."
        )
