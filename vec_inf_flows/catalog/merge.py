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
from vec_inf_flows.spec import ArgValue

_ARG_KEYS = {"vllm_args": "vllm", "sglang_args": "sglang"}
PARALLEL_FLAGS = ("--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size")


def layout_args(
    args: Mapping[str, ArgValue], gpus_per_node: int, num_nodes: int, *, sglang: bool
) -> dict[str, ArgValue]:
    """``args`` with the parallel sizes of this layout: vLLM splits a node's GPUs by tensor
    parallelism and nodes by pipeline stages (as every catalog entry does); SGLang spans all
    GPUs with tensor parallelism. One GPU (or none) needs no sizes at all."""
    kept = {flag: value for flag, value in args.items() if flag not in PARALLEL_FLAGS}
    total = gpus_per_node * num_nodes
    if total <= 1:
        return kept
    if sglang:
        return {"--tensor-parallel-size": total, **kept}
    sizes: dict[str, ArgValue] = {}
    if gpus_per_node > 1:
        sizes["--tensor-parallel-size"] = gpus_per_node
    if num_nodes > 1:
        sizes["--pipeline-parallel-size"] = num_nodes
    return {**sizes, **kept}


def _names_layout(args: object, engine: str) -> bool:
    """Whether a layer's own engine args set any parallel size (then they are the user's)."""
    if not isinstance(args, str | Mapping):
        return False
    try:
        parsed = parse_engine_args(args, "sglang" if engine == "sglang" else "vllm")
    except ConfigError:
        return False  # reported where the args are merged
    return any(flag in PARALLEL_FLAGS for flag in parsed)


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
        layout_before = self._layout()
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
        if self._layout() != layout_before:
            self._follow_layout(layer, source)

    def _layout(self) -> tuple[object, object]:
        return self.values.get("gpus_per_node"), self.values.get("num_nodes", 1)

    def _follow_layout(self, layer: Mapping[str, object], source: str) -> None:
        """A layer that changes GPUs or nodes without naming the parallel sizes gets sizes that
        fit its layout, instead of the ones the lower layer chose for another layout (the
        guide's 1-GPU Qwen2.5-7B-Instruct-1M entry must not keep a built-in tensor-parallel 4).
        """
        gpus, nodes = self._layout()
        if not isinstance(gpus, int) or not isinstance(nodes, int) or gpus < 0 or nodes < 1:
            return  # validation reports the bad value itself
        for key, engine in _ARG_KEYS.items():
            args = self.values.get(key)
            if not isinstance(args, dict) or _names_layout(layer.get(key), engine):
                continue
            self.values[key] = layout_args(args, gpus, nodes, sglang=key == "sglang_args")
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
