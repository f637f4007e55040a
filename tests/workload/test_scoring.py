"""The scorers as tables of answers and references (pure: no server), and a scorer spec refused
in one line before any request is sent."""

from __future__ import annotations

from typing import Any

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.scoring import RecordScorer, check_scorer, parse_scorer

CASES: list[tuple[str, Any, Any, float]] = [
    # spec, answer, reference, score
    ("exact_match", "  Paris \n", "Paris", 1.0),
    ("exact_match", "paris", "Paris", 0.0),
    ("exact_match:ignore_case", "paris", "Paris", 1.0),
    ("exact_match", "Rome", ["Paris", "Rome"], 1.0),  # a list: any acceptable answer
    ("contains", "The capital is Paris.", "Paris", 1.0),
    ("contains", "The capital is Lyon.", "Paris", 0.0),
    ("contains:ignore_case", "THE CAPITAL IS PARIS", "paris", 1.0),
    ("regex", "It is 1889.", r"18\d\d", 1.0),
    ("regex", "It is 1989.", r"^18\d\d$", 0.0),
    ("regex:Answer: (\\w+)", "Let me think. Answer: Paris", "Paris", 1.0),
    ("regex:Answer: (\\w+)", "No idea", "Paris", 0.0),
    ("numeric", "So 3 + 4 = 7", 7, 1.0),
    ("numeric", "It costs 1,250 dollars", "1250", 1.0),
    ("numeric", "About 3.14", 3.14159, 0.0),
    ("numeric:0.01", "About 3.14", 3.14159, 1.0),
    ("numeric:1%", "About 99.5", 100, 1.0),
    ("numeric:1%", "About 98", 100, 0.0),
    ("numeric", "no number here", 1, 0.0),
]


@pytest.mark.parametrize(("spec", "answer", "reference", "expected"), CASES)
def test_builtin_scorers(spec: str, answer: Any, reference: Any, expected: float) -> None:
    assert parse_scorer(spec).function(answer, reference) == expected


def completion(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "text": text}]}


def chat(text: str | None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def embedding(vector: list[float]) -> dict[str, Any]:
    return {"data": [{"index": 0, "embedding": vector}]}


def test_auto_scores_text_by_exact_match_and_embeddings_by_cosine() -> None:
    scorer = RecordScorer.of(None)
    assert scorer.score("completion", completion(" Paris"), "Paris").score == 1.0
    assert scorer.score("chat", chat("Rome"), "Paris").score == 0.0
    assert scorer.score("embedding", embedding([1.0, 0.0]), [1.0, 0.0]).score == 1.0
    assert scorer.score("embedding", embedding([1.0, 0.0]), "[0.0, 1.0]").score == 0.0
    assert scorer.score("embedding", embedding([3.0, 4.0]), [4.0, 3.0]).score == 0.96


def test_a_failed_request_scores_zero_and_a_broken_scorer_scores_nothing() -> None:
    assert RecordScorer.of("exact_match").score("chat", None, "Paris").score == 0.0
    empty = RecordScorer.of("exact_match").score("chat", chat(None), "Paris")
    assert (empty.score, empty.error) == (0.0, "the response's first choice has no text")
    wrong_kind = RecordScorer.of("exact_match").score("embedding", embedding([1.0]), "x")
    assert wrong_kind.score is None and "scores text" in str(wrong_kind.error)
    bad_vector = RecordScorer.of("embedding_cosine").score("embedding", embedding([1.0]), [1, 2])
    assert bad_vector.score is None and "2 dimensions" in str(bad_vector.error)


def double_length(answer: str, reference: str) -> float:
    return min(1.0, len(answer) / (2 * len(reference)))


def is_upper(answer: str, reference: str) -> bool:
    return answer.isupper()


def broken(answer: str, reference: str) -> float:
    raise RuntimeError("scorer bug")


def test_a_user_scorer_is_imported_by_module_path() -> None:
    here = __name__
    assert RecordScorer.of(f"{here}:double_length").score("chat", chat("ab"), "ab").score == 0.5
    assert RecordScorer.of(f"{here}:is_upper").score("chat", chat("YES"), "").score == 1.0
    failed = RecordScorer.of(f"{here}:broken").score("chat", chat("x"), "x")
    assert failed.score is None and failed.error == "RuntimeError: scorer bug"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("exact", "Unknown scorer 'exact'"),
        ("numeric:two", "the tolerance is not a number"),
        ("regex:(unclosed", "not a valid pattern"),
        ("exact_match:loose", "takes no argument but ignore_case"),
        ("no_such_module.scorers:score", "Cannot import scorer"),
        (f"{__name__}:CASES", "is not callable"),
    ],
)
def test_a_bad_scorer_spec_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_scorer(spec)


def test_auto_and_nothing_are_fine() -> None:
    check_scorer(None)
    check_scorer("auto")
