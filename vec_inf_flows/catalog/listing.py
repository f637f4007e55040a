"""What ``list`` shows: a short row per model, or one model's full configuration."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from vec_inf_flows.catalog.loader import Catalog, load_catalog

# Display order of model types (as the anchor's list panels).
TYPE_ORDER = ("LLM", "VLM", "Text_Embedding", "Reward_Modeling", "OCR", "Audio")
# Not shown by ``list MODEL``: per-user settings rather than facts about the model.
_HIDDEN_FIELDS = frozenset({"venv", "log_dir"})


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    family: str
    variant: str | None
    model_type: str


def list_models(catalog: Catalog | None = None) -> list[ModelInfo]:
    """Every model, sorted by name."""
    catalog = catalog if catalog is not None else load_catalog()
    return [
        ModelInfo(
            name=config.model_name,
            family=config.model_family,
            variant=config.model_variant,
            model_type=config.model_type,
        )
        for config in (catalog.models[name] for name in catalog.names())
    ]


def model_config_dump(name: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """One model's set fields for ``list MODEL``; engine args stay ``{flag: value}`` (JSON-safe).

    Render a value for a table with ``engine_args.render_value``.
    """
    catalog = catalog if catalog is not None else load_catalog()
    config = catalog.get(name)
    dump: dict[str, Any] = {}
    for field, value in config.model_dump().items():
        if field in _HIDDEN_FIELDS or value is None or value == {}:
            continue
        dump[field] = value
    return dump
