"""Shared helpers for the simulator tests: recordings, shape comparison, SSE parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vllm_http"
RECORDED_NAME = "smollm2-135m-instruct"  # the served name in the recordings
# Flags that make the simulator's answers comparable to the recordings, quickly.
RECORDING_ARGS = [
    "/opt/engine/models/smollm2-135m-instruct",
    "--served-model-name",
    RECORDED_NAME,
    "--max-model-len",
    "2048",
]


def recording(name: str) -> str:
    return (FIXTURES / name).read_text()


def recorded_json(name: str) -> Any:
    return json.loads(recording(name))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_diff(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Differences in keys and value kinds (not values); lists compare their first items."""
    if _kind(actual) != _kind(expected):
        return [f"{path}: {_kind(actual)} != {_kind(expected)}"]
    if isinstance(expected, dict):
        diffs = []
        if list(actual) != list(expected):
            diffs.append(f"{path}: keys {list(actual)} != {list(expected)}")
        for key in expected.keys() & actual.keys():
            diffs += shape_diff(actual[key], expected[key], f"{path}.{key}")
        return diffs
    if isinstance(expected, list) and expected and actual:
        return shape_diff(actual[0], expected[0], f"{path}[0]")
    return []


def sse_payloads(text: str) -> list[str]:
    """Split an SSE body into its ``data:`` payloads, checking the framing on the way."""
    assert text.endswith("\n\n"), "every SSE frame ends with a blank line"
    frames = text[:-2].split("\n\n")
    assert all(frame.startswith("data: ") for frame in frames), frames
    return [frame[len("data: ") :] for frame in frames]
