"""Scoring answers against the references a dataset carries (``expected`` / ``reference``).

Pure and Prefect-free: ``RecordScorer.of("numeric:0.01")`` scores one response at a time as the
workload runner writes it, so every result record carries its own ``score``.
"""

from vec_inf_flows.scoring.builtin import BUILTIN_SCORERS
from vec_inf_flows.scoring.record import RecordScore, RecordScorer
from vec_inf_flows.scoring.spec import (
    AUTO,
    Scorer,
    check_scorer,
    check_scorers,
    parse_scorer,
    scorer_for,
)

__all__ = [
    "AUTO",
    "BUILTIN_SCORERS",
    "RecordScore",
    "RecordScorer",
    "Scorer",
    "check_scorer",
    "check_scorers",
    "parse_scorer",
    "scorer_for",
]
