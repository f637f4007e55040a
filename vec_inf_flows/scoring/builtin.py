"""The built-in scorers: each takes the answer and the record's reference, returns 0..1.

A text reference may also be a list of acceptable answers (any one scores). ``argument`` is the
part of the spec after the colon (``numeric:0.01``), checked once when the spec is parsed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from vec_inf_flows.errors import ConfigError

ScoreFunction = Callable[[Any, Any], float]
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


@dataclass(frozen=True)
class Builtin:
    """A scorer family: what answer it takes and how it turns an argument into a function."""

    takes: Literal["text", "vector"]
    make: Callable[[str | None], ScoreFunction]
    help: str


def _normalise(text: object, ignore_case: bool) -> str:
    joined = " ".join(str(text).split())
    return joined.casefold() if ignore_case else joined


def _alternatives(reference: Any) -> list[Any]:
    return list(reference) if isinstance(reference, list) else [reference]


def _ignore_case(argument: str | None, name: str) -> bool:
    if argument not in (None, "ignore_case"):
        raise ConfigError(f"Scorer {name} takes no argument but ignore_case (got {argument!r}).")
    return argument == "ignore_case"


def exact_match(argument: str | None) -> ScoreFunction:
    fold = _ignore_case(argument, "exact_match")

    def score(answer: str, reference: Any) -> float:
        given = _normalise(answer, fold)
        return float(any(given == _normalise(ref, fold) for ref in _alternatives(reference)))

    return score


def contains(argument: str | None) -> ScoreFunction:
    fold = _ignore_case(argument, "contains")

    def score(answer: str, reference: Any) -> float:
        given = _normalise(answer, fold)
        return float(any(_normalise(ref, fold) in given for ref in _alternatives(reference)))

    return score


def regex(argument: str | None) -> ScoreFunction:
    """``regex``: the reference is a pattern the answer must contain. ``regex:PATTERN``: the
    pattern's first group (or whole match) in the answer must equal the reference."""
    if argument is None:
        return lambda answer, reference: float(
            any(re.search(str(ref), answer) for ref in _alternatives(reference))
        )
    try:
        pattern = re.compile(argument)
    except re.error as error:
        raise ConfigError(f"Scorer regex:{argument}: not a valid pattern ({error}).") from None

    def extracted(answer: str, reference: Any) -> float:
        found = pattern.search(answer)
        if found is None:
            return 0.0
        value = _normalise(found.group(1) if pattern.groups else found.group(0), False)
        return float(any(value == _normalise(ref, False) for ref in _alternatives(reference)))

    return extracted


def numeric(argument: str | None) -> ScoreFunction:
    """The answer's last number equals the reference within a tolerance: absolute
    (``numeric:0.01``) or relative (``numeric:1%``); default 1e-6."""
    text = (argument or "1e-6").strip()
    relative = text.endswith("%")
    try:
        tolerance = float(text.rstrip("%")) / (100.0 if relative else 1.0)
    except ValueError:
        raise ConfigError(f"Scorer numeric:{argument}: the tolerance is not a number.") from None
    if not tolerance >= 0:
        raise ConfigError(f"Scorer numeric:{argument}: the tolerance must not be negative.")

    def score(answer: str, reference: Any) -> float:
        found = _NUMBER.findall(answer)
        if not found:
            return 0.0
        value = float(found[-1].replace(",", ""))
        for ref in _alternatives(reference):
            target = float(str(ref).replace(",", ""))
            allowed = tolerance * abs(target) if relative else tolerance
            if abs(value - target) <= allowed:
                return 1.0
        return 0.0

    return score


def embedding_cosine(argument: str | None) -> ScoreFunction:
    """Cosine similarity of the embedding and the reference vector (a list, or one as JSON)."""
    if argument is not None:
        raise ConfigError(f"Scorer embedding_cosine takes no argument (got {argument!r}).")

    def score(answer: list[float], reference: Any) -> float:
        vector = json.loads(reference) if isinstance(reference, str) else reference
        if not isinstance(vector, list) or not vector:
            raise ValueError("the reference is not a vector (a list of numbers)")
        if len(vector) != len(answer):
            raise ValueError(
                f"the reference has {len(vector)} dimensions, the answer {len(answer)}"
            )
        expected = [float(value) for value in vector]
        dot = sum(a * b for a, b in zip(answer, expected, strict=True))
        norms = math.sqrt(sum(a * a for a in answer)) * math.sqrt(sum(b * b for b in expected))
        if norms == 0:
            raise ValueError("a zero vector has no direction")
        return dot / norms

    return score


BUILTIN_SCORERS: dict[str, Builtin] = {
    "exact_match": Builtin("text", exact_match, "the stripped answer equals the reference"),
    "contains": Builtin("text", contains, "the reference appears in the answer"),
    "regex": Builtin("text", regex, "the answer matches the reference pattern"),
    "numeric": Builtin("text", numeric, "the answer's last number is the reference"),
    "embedding_cosine": Builtin("vector", embedding_cosine, "cosine of embedding and vector"),
}
