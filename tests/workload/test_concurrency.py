"""Deriving the in-flight window from engine arguments and job files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.concurrency import (
    DEFAULT_CONCURRENCY,
    concurrency_for,
    max_num_seqs,
    max_num_seqs_from_job_json,
)


def test_from_engine_args_pairs_and_mappings() -> None:
    assert max_num_seqs((("--max-model-len", 4096), ("--max-num-seqs", 64))) == 64
    assert max_num_seqs({"max_num_seqs": "32"}) == 32
    assert max_num_seqs({"--max-num-seqs": True}) is None
    assert max_num_seqs([("--max-model-len", 8)]) is None


def test_from_a_nested_job_json(tmp_path: Path) -> None:
    job = tmp_path / "m.123.json"
    job.write_text(json.dumps({"model_name": "m", "engine_args": [["--max-num-seqs", 48]]}))
    assert max_num_seqs_from_job_json(job) == 48
    job.write_text(json.dumps({"config": {"vllm_args": {"--max-num-seqs": 256}}}))
    assert max_num_seqs_from_job_json(job) == 256
    job.write_text("{}")
    assert max_num_seqs_from_job_json(job) is None
    job.write_text("not json")
    with pytest.raises(ConfigError, match="not JSON"):
        max_num_seqs_from_job_json(job)


def test_window_over_replicas() -> None:
    assert concurrency_for([8]) == 10
    assert concurrency_for([8, 8], headroom=1.0) == 16
    assert concurrency_for([None, 4], headroom=1.0) == DEFAULT_CONCURRENCY + 4
