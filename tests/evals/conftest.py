"""A small real tokenizer and a simulator in answer mode, shared by the lm-eval tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eval_helpers import WRONG_GEN, WRONG_MC, AnswerSim, sim_args
from lm_eval_kit import build_tokenizer, write_answers

from vec_inf_flows.sim.process import SimServer


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("weights") / "qa-sim")


@pytest.fixture(scope="session")
def answers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, float]:
    path = tmp_path_factory.mktemp("answers") / "answers.jsonl"
    gen, mc = write_answers(path, WRONG_GEN, WRONG_MC)
    return path, gen, mc


@pytest.fixture(scope="module")
def answer_sim(tokenizer_dir: Path, answers: tuple[Path, float, float]) -> Iterator[AnswerSim]:
    path, gen, mc = answers
    with SimServer(sim_args(tokenizer_dir, path)) as sim:
        yield AnswerSim(sim, tokenizer_dir, gen, mc)
