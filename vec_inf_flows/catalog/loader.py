"""The catalog: built-in ``models.yaml`` merged with the user's files, defaults and environment.

The files and their order come from ``sources.py``. Precedence per model, lowest first:

1. package defaults (16 CPUs, 64G, 08:00:00, vLLM, ``~/.vec-inf-logs``, ``/model-weights``);
2. the files' ``defaults:`` sizing (cpus_per_task, mem_per_node, time, env) - only where the
   built-in entry does not size the model itself (vec-inf's ``default_args`` count as
   ``defaults:``);
3. the built-in entry;
4. the files' ``defaults:`` site keys (partition, qos, account, paths, venv ...) - these beat
   the built-in entry, whose a40/m2 values are one site's choices;
5. ``VEC_INF_ACCOUNT``, ``VEC_INF_PARTITION`` ... environment variables;
6. the files' model entries (``vllm_args`` and ``env`` merged per key; new models added). An
   entry that changes GPUs or nodes without naming parallel sizes gets sizes that fit its
   layout (merge.py), so the guide's 1-GPU entry launches as written.

Launch options come last, in ``resolve``. The built-in file is parsed once per process and
whole catalogs are cached by (files, mtimes, environment), so ``list`` stays fast.
"""

from __future__ import annotations

import difflib
import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from vec_inf_flows.catalog.files import (
    SITE_KEYS,
    SIZING_KEYS,
    CatalogFile,
    catalog_from_document,
    read_catalog_file,
    read_config_document,
)
from vec_inf_flows.catalog.merge import MergedEntry
from vec_inf_flows.catalog.schema import ModelConfig, require_model_name
from vec_inf_flows.catalog.site import SiteRules, site_from_document
from vec_inf_flows.catalog.sources import ConfigSource, config_sources, file_stamp
from vec_inf_flows.catalog.yaml_load import parse_yaml
from vec_inf_flows.errors import ConfigWarning, ModelNotFoundError

BUILTIN_PATH = Path(__file__).with_name("models.yaml")
BUILTIN_LABEL = "built-in models.yaml"
PACKAGE_DEFAULTS: dict[str, object] = {
    "num_nodes": 1,
    "cpus_per_task": 16,
    "mem_per_node": "64G",
    "time": "08:00:00",
    "engine": "vllm",
    "log_dir": "~/.vec-inf-logs",
    "model_weights_parent_dir": "/model-weights",
}
ENV_DEFAULTS = {
    "VEC_INF_ACCOUNT": "account",
    "VEC_INF_WORK_DIR": "work_dir",
    "VEC_INF_LOG_DIR": "log_dir",
    "VEC_INF_PARTITION": "partition",
    "VEC_INF_QOS": "qos",
    "VEC_INF_MODEL_WEIGHTS_PARENT_DIR": "model_weights_parent_dir",
}


@dataclass(frozen=True)
class Catalog:
    """Validated models plus what ``resolve`` needs to merge launch options over them."""

    models: Mapping[str, ModelConfig]
    entries: Mapping[str, MergedEntry]  # merged raw values and their origins
    template: MergedEntry  # defaults only: the base of a custom (unlisted) model
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the files held that was ignored (warned about)
    rules: SiteRules = field(
        default_factory=SiteRules
    )  # limits and required fields from environment.yaml
    sources: tuple[tuple[str, tuple[int, int]], ...] = ()  # every file read, with its stamp

    def names(self) -> list[str]:
        return sorted(self.models)

    def get(self, name: str) -> ModelConfig:
        require_model_name(name)
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFoundError(name, self.suggest(name)) from None

    def entry(self, name: str) -> MergedEntry:
        self.get(name)
        return self.entries[name].copy()

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """Close names, case-insensitively: names containing the text first, then look-alikes."""
        by_lower = {candidate.lower(): candidate for candidate in self.models}
        wanted = name.lower()
        containing = sorted((key for key in by_lower if wanted and wanted in key), key=len)
        similar = difflib.get_close_matches(wanted, list(by_lower), n=limit, cutoff=0.6)
        ordered = list(dict.fromkeys([*containing, *similar]))
        return [by_lower[key] for key in ordered[:limit]]


def load_catalog(
    extra_files: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> Catalog:
    """The merged catalog: built-in, then the config files ``sources.py`` lists, in order."""
    env = os.environ if environ is None else environ
    sources = config_sources(env, extra_files)
    stamps = tuple((source, file_stamp(source.path)) for source in sources)
    env_values = tuple((name, env.get(name, "")) for name in sorted(ENV_DEFAULTS))
    return _cached_catalog(stamps, env_values)


@functools.lru_cache(maxsize=16)
def _cached_catalog(
    stamps: tuple[tuple[ConfigSource, tuple[int, int]], ...],
    env_values: tuple[tuple[str, str], ...],
) -> Catalog:
    layers: list[CatalogFile] = []
    rules = SiteRules()
    read: list[str] = []
    for source, _ in stamps:
        read.append(source.path)
        if source.kind == "models":
            layers.append(read_catalog_file(source.path, source.what))
            continue
        site = site_from_document(read_config_document(source.path, source.what), source.path)
        rules = rules.merged(site.rules)
        layers.append(CatalogFile(site.label, {}, site.defaults, site.notes))
        for path in site.model_files:  # vec-inf's site-wide models file, when it exists
            read.append(path)
            if os.path.exists(path):
                layers.append(read_catalog_file(path, f"{source.path}: cached_model_config_path"))
    catalog = build_catalog(builtin_catalog(), layers, dict(env_values), rules)
    sources = tuple((path, file_stamp(path)) for path in read)
    warn_notes(catalog.notes)
    return replace(catalog, sources=sources)


def warn_notes(notes: Sequence[str]) -> None:
    for note in notes:
        warnings.warn(note, ConfigWarning, stacklevel=2)


@functools.lru_cache(maxsize=1)
def builtin_catalog() -> CatalogFile:
    text = BUILTIN_PATH.read_text(encoding="utf-8")
    return catalog_from_document(parse_yaml(text, BUILTIN_LABEL), BUILTIN_LABEL)


def build_catalog(
    builtin: CatalogFile,
    user_files: Sequence[CatalogFile],
    environ: Mapping[str, str],
    rules: SiteRules | None = None,
) -> Catalog:
    """Merge the layers (see the module docstring) and validate every model."""
    env_layer = {
        name: (field, environ[name].strip())
        for name, field in ENV_DEFAULTS.items()
        if environ.get(name, "").strip()
    }
    names = list(builtin.models)
    for user in user_files:
        names.extend(name for name in user.models if name not in names)
    entries = {name: _merge(name, builtin, user_files, env_layer) for name in names}
    models = {name: entry.validate(name) for name, entry in entries.items()}
    template = _merge(None, builtin, user_files, env_layer)
    _check_defaults(template)
    labels = tuple(user.label for user in user_files)
    notes = tuple(note for user in (builtin, *user_files) for note in user.notes)
    return Catalog(models, entries, template, labels, notes, rules or SiteRules())


def _check_defaults(template: MergedEntry) -> None:
    """Validate the defaults even where every model overrides them: a typo is still a typo."""
    probe = template.copy()
    placeholders = {"model_family": "defaults", "model_type": "LLM", "gpus_per_node": 0}
    probe.apply({**placeholders, "vocab_size": 0}, "defaults")
    probe.validate("defaults", subject="")


def _merge(
    name: str | None,
    builtin: CatalogFile,
    user_files: Sequence[CatalogFile],
    env_layer: Mapping[str, tuple[str, str]],
) -> MergedEntry:
    builtin_entry = builtin.models.get(name, {}) if name is not None else {}
    entry = MergedEntry()
    entry.apply(PACKAGE_DEFAULTS, "package defaults")
    for user in user_files:
        source = f"{user.label}: defaults"
        entry.apply(user.defaults, source, only=SIZING_KEYS - {"env"}, unless_set_by=builtin_entry)
        entry.apply(user.defaults, source, only={"env"})
    entry.apply(builtin_entry, builtin.label, model=name)
    for user in user_files:
        entry.apply(user.defaults, f"{user.label}: defaults", only=SITE_KEYS)
    for variable, (key, value) in env_layer.items():
        entry.apply({key: value}, variable)
    if name is not None:
        for user in user_files:
            if name in user.models:
                entry.apply(user.models[name], user.label, model=name)
    return entry
