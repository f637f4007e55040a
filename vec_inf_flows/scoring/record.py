"""Scoring one result as it is written: the runner calls ``RecordScorer.score`` per response."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vec_inf_flows.scoring.answers import NoAnswer, answer_of
from vec_inf_flows.scoring.spec import AUTO, Scorer, parse_scorer

_AUTO_FOR = {"embedding": "embedding_cosine"}  # every other kind: exact_match


@dataclass(frozen=True)
class RecordScore:
    score: float | None
    error: str | None = None


@dataclass
class RecordScorer:
    """A spec resolved once (per request kind for ``auto``); never raises while scoring: a
    scorer that fails gives that record no score and the reason, the run goes on."""

    spec: str = AUTO
    _resolved: dict[str, Scorer] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, spec: str | None) -> RecordScorer:
        scorer = cls((spec or AUTO).strip() or AUTO)
        if scorer.spec != AUTO:
            scorer._resolved[""] = parse_scorer(scorer.spec)  # a bad spec fails here, at once
        return scorer

    def scorer_for(self, kind: str) -> Scorer:
        if self.spec != AUTO:
            return self._resolved[""]
        if kind not in self._resolved:
            self._resolved[kind] = parse_scorer(_AUTO_FOR.get(kind, "exact_match"))
        return self._resolved[kind]

    def score(self, kind: str, response: dict[str, Any] | None, reference: Any) -> RecordScore:
        """A failed request scores 0: an unanswered question counts as a wrong answer."""
        if response is None:
            return RecordScore(0.0)
        scorer = self.scorer_for(kind)
        try:
            answer = answer_of(kind, response)
            if scorer.takes == "text" and not isinstance(answer, str):
                raise ValueError(f"{scorer.spec} scores text, and this is an embedding")
            if scorer.takes == "vector" and isinstance(answer, str):
                raise ValueError(f"{scorer.spec} scores embeddings, and this is text")
            value = scorer.function(answer, reference)
        except NoAnswer as error:
            return RecordScore(0.0, str(error))
        except Exception as error:  # a user scorer's bug must not stop the run
            return RecordScore(None, f"{type(error).__name__}: {error}"[:300])
        if not math.isfinite(value):
            return RecordScore(None, f"the scorer returned {value}")
        return RecordScore(round(value, 6))
