"""Shared helpers for the workload tests: simulator servers and input/output files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vec_inf_flows.sim.process import SimServer

FAST = ["--sim-startup-delay", "0", "--sim-ttft", "0.001"]


def sim_args(*extra: str, seqs: int = 8, tokens_per_second: int = 2000) -> list[str]:
    return [
        "sim-model",
        "--served-model-name",
        "m",
        "--max-num-seqs",
        str(seqs),
        "--sim-tokens-per-second",
        str(tokens_per_second),
        *FAST,
        *extra,
    ]


@pytest.fixture(scope="module")
def clean_server() -> Iterator[SimServer]:
    from vec_inf_flows.sim.process import SimServer

    with SimServer(sim_args()) as server:
        yield server


def write_requests(path: Path, count: int, *, max_tokens: int = 4, start: int = 0) -> Path:
    with path.open("w") as handle:
        for n in range(start, start + count):
            if n % 2:
                row: dict[str, Any] = {"id": f"r{n}", "prompt": f"prompt {n}"}
            else:
                row = {"id": f"r{n}", "messages": [{"role": "user", "content": f"hi {n}"}]}
            row["max_tokens"] = max_tokens
            handle.write(json.dumps(row) + "\n")
    return path


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
