"""Comparing a run's scores with the previous run of the same evaluation (pure)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from vec_inf_flows.evals.history import HistoryEntry


class ScoreChange(BaseModel):
    """One pair scored in both runs, with the same scorer."""

    model_config = ConfigDict(frozen=True)

    model: str
    dataset: str
    scorer: str | None
    score: float
    previous_score: float
    previous_flow_run_id: str

    @property
    def drop(self) -> float:
        return round(self.previous_score - self.score, 6)


def score_changes(current: HistoryEntry, previous: HistoryEntry | None) -> list[ScoreChange]:
    if previous is None:
        return []
    before = {row.key: row.score for row in previous.rows if row.score is not None}
    return [
        ScoreChange(
            model=row.model,
            dataset=row.dataset,
            scorer=row.scorer,
            score=row.score,
            previous_score=before[row.key],
            previous_flow_run_id=previous.flow_run_id,
        )
        for row in current.rows
        if row.score is not None and row.key in before
    ]


def regressions(changes: list[ScoreChange], threshold: float) -> list[ScoreChange]:
    """The pairs whose score fell by more than ``threshold``."""
    return [change for change in changes if change.drop > threshold]
