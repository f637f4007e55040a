"""Helpers of the lm-eval tests: the answer-mode simulator's arguments and handle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows.sim.process import SimServer

SERVED = "qa-sim"
WRONG_GEN = {0, 5, 11, 17, 23}  # 19 of 24 right
WRONG_MC = {1, 2, 9, 14, 20, 21, 22}  # 17 of 24 right


@dataclass(frozen=True)
class AnswerSim:
    sim: SimServer
    tokenizer: Path
    expected_gen: float
    expected_mc: float


def sim_args(tokenizer: Path, answers_file: Path, *extra: str) -> list[str]:
    return [
        str(tokenizer),
        "--served-model-name",
        SERVED,
        "--max-model-len",
        "2048",
        "--sim-tokens-per-second",
        "2000",
        "--sim-tokenizer",
        str(tokenizer),
        "--sim-answers",
        str(answers_file),
        *extra,
    ]
