"""Which lm-eval number a row is scored by: the task's primary metric, or the one asked for."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vec_inf_flows.cli.main import build_parser
from vec_inf_flows.cli.run import lm_eval_parameter
from vec_inf_flows.evals import LmEvalSpec
from vec_inf_flows.evals.models import Metric, TaskResult
from vec_inf_flows.evals.results import primary_score

GEN = TaskResult(
    task="qa_gen",
    ok=True,
    metrics=[
        Metric(name="exact_match", filter="strict-match", value=0.0, stderr=0.0),
        Metric(name="exact_match", filter="last_word", value=0.8, stderr=0.09),
    ],
    n_samples=20,
)
MC = TaskResult(
    task="qa_mc",
    ok=True,
    metrics=[Metric(name="acc", value=0.45), Metric(name="acc_norm", value=0.5)],
    n_samples=20,
)


def test_by_default_acc_then_exact_match_under_the_first_filter() -> None:
    assert (primary_score(MC).metric, primary_score(MC).value) == ("acc", 0.45)
    gen = primary_score(GEN)
    assert (gen.metric, gen.filter, gen.value) == ("exact_match", "strict-match", 0.0)


def test_a_wanted_metric_and_filter_where_the_task_reports_them() -> None:
    assert primary_score(MC, "acc_norm").value == 0.5
    gen = primary_score(GEN, "exact_match,last_word")
    assert (gen.metric, gen.filter, gen.value) == ("exact_match", "last_word", 0.8)
    assert gen.stderr == 0.09
    # A task without it keeps its primary metric, and the row names the one it used.
    kept = primary_score(GEN, "acc_norm")
    assert (kept.metric, kept.value) == ("exact_match", 0.0)


def test_the_metric_from_the_command_line_and_its_shape_checked() -> None:
    args = build_parser().parse_args(
        ["run", "evaluate", "--models", "M", "--lm-eval-task", "qa_mc", "--lm-eval-metric",
         "exact_match,last_word"]
    )  # fmt: skip
    given = lm_eval_parameter(args)
    assert given is not None and LmEvalSpec(**given).metric == "exact_match,last_word"
    with pytest.raises(ValidationError):
        LmEvalSpec(tasks=["qa_mc"], metric="acc; rm -rf /")
