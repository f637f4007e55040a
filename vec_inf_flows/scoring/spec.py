"""Scorer specs as a flow parameter or a CLI flag gives them: ``exact_match``, ``numeric:1%``,
``regex:Answer: (\\w+)``, ``auto``, or a user function ``package.module:function``.

A user function is called as ``function(answer, reference)``: the answer is the reply text (the
embedding vector for embedding requests), the reference is the record's ``expected`` or
``reference`` value as written in the dataset; it returns a number (a bool counts as 0 or 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vec_inf_flows.callables import import_callable
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.scoring.builtin import BUILTIN_SCORERS, ScoreFunction

AUTO = "auto"  # exact_match for chat and completions, embedding_cosine for embeddings


@dataclass(frozen=True)
class Scorer:
    """One resolved scorer: its spec (the name shown in tables) and its function."""

    spec: str
    function: ScoreFunction
    takes: Literal["text", "vector", "any"]


def _is_user_function(spec: str) -> bool:
    module, colon, _ = spec.partition(":")
    return bool(colon) and module not in BUILTIN_SCORERS


def parse_scorer(spec: str) -> Scorer:
    """The scorer ``spec`` names; ``ConfigError`` for an unknown name, a bad argument or a
    user function that does not import. ``auto`` is resolved per request kind by the caller."""
    text = spec.strip()
    if not text or text == AUTO:
        raise ConfigError("parse_scorer needs a concrete scorer, not 'auto'.")
    if _is_user_function(text):
        function = import_callable(text, "Scorer")
        return Scorer(text, _as_score(function), "any")
    name, _, argument = text.partition(":")
    builtin = BUILTIN_SCORERS.get(name)
    if builtin is None:
        known = ", ".join(sorted(BUILTIN_SCORERS))
        raise ConfigError(
            f"Unknown scorer {spec!r}: use one of {known}, auto, or 'package.module:function'."
        )
    return Scorer(text, builtin.make(argument if ":" in text else None), builtin.takes)


def check_scorer(spec: str | None) -> None:
    """Refuse a bad spec before anything is launched (``None`` and ``auto`` are fine)."""
    if spec is not None and spec.strip() not in ("", AUTO):
        parse_scorer(spec)


def _as_score(function: Any) -> ScoreFunction:
    def score(answer: Any, reference: Any) -> float:
        value = function(answer, reference)
        if isinstance(value, int | float):  # a bool is an int
            return float(value)
        raise TypeError(f"the scorer returned {type(value).__name__}, not a number")

    return score


def scorer_for(dataset: str, scorers: Mapping[str, str] | None) -> str | None:
    """The scorer given for a dataset: by its path as listed, else by its file name."""
    if not scorers:
        return None
    return scorers.get(dataset) or scorers.get(Path(dataset).name)


def check_scorers(scorers: Mapping[str, str] | None, datasets: Sequence[str]) -> None:
    """Every spec parses, and every key names one of the datasets (a typo would otherwise
    leave a dataset scored by the default without a word)."""
    for key, spec in (scorers or {}).items():
        if not any(key in (dataset, Path(dataset).name) for dataset in datasets):
            raise ConfigError(f"scorers names {key!r}, which is not one of the datasets.")
        check_scorer(spec)
