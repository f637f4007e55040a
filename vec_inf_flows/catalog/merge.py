"""Layered merging of one model's settings, remembering where each value came from.

Validation runs once, on the merged result; when a value is bad, the error names the layer
that supplied it (a file, an environment variable, the launch options), not just the field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from vec_inf_flows.catalog.engine_args import merge_engine_args, parse_engine_args
from vec_inf_flows.catalog.schema import ModelConfig, describe_validation_error
from vec_inf_flows.errors import ConfigError

_ARG_KEYS = {"vllm_args": "vllm", "sglang_args": "sglang"}


@dataclass
class MergedEntry:
    values: dict[str, object] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    defined_in: str = "configuration"  # the last layer that named this model itself

    def copy(self) -> MergedEntry:
        return MergedEntry(dict(self.values), dict(self.origins), self.defined_in)

    def apply(
        self,
        layer: Mapping[str, object],
        source: str,
        *,
        model: str | None = None,
        only: Collection[str] | None = None,
        unless_set_by: Mapping[str, object] | None = None,
    ) -> None:
        """Lay ``layer`` over the entry: ``env`` and engine args merge per key, others replace.

        ``only`` limits the keys taken; ``unless_set_by`` skips keys that mapping already sets
        (how cluster defaults yield to a model's own sizing).
        """
        if model is not None and layer:
            self.defined_in = source
        for key, value in layer.items():
            if only is not None and key not in only:
                continue
            if unless_set_by is not None and key in unless_set_by:
                continue
            if key in _ARG_KEYS:
                value = self._merged_args(key, value, source, model)
            elif key == "env" and isinstance(value, Mapping):
                previous = self.values.get("env")
                base = dict(previous) if isinstance(previous, Mapping) else {}
                value = {**base, **value}
            self.values[key] = value
            self.origins[key] = source

    def validate(self, model_name: str, subject: str | None = None) -> ModelConfig:
        """Validate the merged values; ``subject`` replaces "model 'NAME'" in an error."""
        try:
            return ModelConfig.model_validate({**self.values, "model_name": model_name})
        except ValidationError as error:
            location = error.errors()[0]["loc"]
            source = self.origins.get(str(location[0]) if location else "", self.defined_in)
            detail = describe_validation_error(error)
            about = f"model '{model_name}'" if subject is None else subject
            raise ConfigError(f"{source}: {about + ': ' if about else ''}{detail}") from None

    def _merged_args(self, key: str, value: object, source: str, model: str | None) -> object:
        if not isinstance(value, str | Mapping) and value is not None:
            return value  # the schema reports the wrong type with its origin
        try:
            parsed = parse_engine_args(value, "sglang" if key == "sglang_args" else "vllm")
        except ConfigError as error:
            where = f"model '{model}': " if model else ""
            raise ConfigError(f"{source}: {where}{key}: {error}") from None
        previous = self.values.get(key)
        base = previous if isinstance(previous, dict) else {}
        return merge_engine_args(base, parsed)
