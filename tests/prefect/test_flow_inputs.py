"""A flow's parameters are checked at its first line: the same rule for every flow that has the
parameter, and an in-process call refused before any job exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect_helpers import MODEL, ClusterJobs, write_prompts

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.flows import evaluate, serve_and_run
from vec_inf_flows.flows._inputs import check_parameters

pytestmark = pytest.mark.prefect


def test_good_parameters_pass(tmp_path: Path) -> None:
    dataset = write_prompts(tmp_path / "p.jsonl", 2)
    check_parameters(
        {"dataset": dataset, "chunk_size": 1, "relaunches": 0, "ready_timeout": 1.0, "job_id": "7"}
    )
    check_parameters({"datasets": [dataset], "output_dir": str(tmp_path / "new")})


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({"chunk_size": 0}, "chunk_size must be at least 1"),
        ({"max_parallel_servers": 0}, "max_parallel_servers must be at least 1"),
        ({"relaunches": -1}, "relaunches must not be negative"),
        ({"poll_interval": 0}, "poll_interval must be more than 0"),
        ({"datasets": ["/nonexistent/a.jsonl"]}, "does not exist"),
        ({"dataset": None, "workload": "no_such_package.evals:run"}, "Cannot import workload"),
        ({"workload": "package.module:run"}, "Give either a dataset or a workload"),
        ({"output": "/proc/version/out.jsonl"}, "is not a directory"),
        ({"scorer": "no_such_package.scorers:score"}, "Cannot import scorer"),
        ({"scorer": "numeric:loose"}, "the tolerance is not a number"),
        ({"scorers": {"other.jsonl": "contains"}}, "'other.jsonl', which is not one of"),
        ({"evaluation_name": "nightly/../x"}, "must be 1-100 letters"),
        ({"regression_threshold": -0.1}, "regression_threshold must not be negative"),
        ({"dataset": None, "output": "/tmp/answers.jsonl"}, "An output file needs a dataset"),
    ],
)
def test_bad_parameters_are_refused(tmp_path: Path, bad: dict[str, Any], expected: str) -> None:
    parameters = {"dataset": write_prompts(tmp_path / "p.jsonl", 2), **bad}

    with pytest.raises(ConfigError, match=expected):
        check_parameters(parameters)


def test_flows_refuse_bad_input_before_launching(jobs: ClusterJobs, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    dataset = write_prompts(tmp_path / "p.jsonl", 2)

    with pytest.raises(ConfigError, match="does not exist"):
        serve_and_run(MODEL, dataset=missing, launch_options=jobs.options())
    with pytest.raises(ConfigError, match="chunk_size"):
        evaluate([MODEL], [dataset], chunk_size=0, launch_options=jobs.options())
    with pytest.raises(ConfigError, match="Unknown scorer 'exact'"):
        evaluate([MODEL], [dataset], scorers={"p.jsonl": "exact"}, launch_options=jobs.options())
    with pytest.raises(ConfigError, match="An output file needs a dataset"):
        serve_and_run(MODEL, output=str(tmp_path / "o.jsonl"), launch_options=jobs.options())

    assert jobs.ids() == []


def test_the_cli_refuses_an_output_without_a_dataset_before_prefect_starts(
    tmp_path: Path,
) -> None:
    """Before this check the run started Prefect and launched a server, then failed."""
    cli = Path(sys.executable).with_name("vec-inf-flows")
    argv = [str(cli), "run", "serve-and-run", "--model", MODEL, "--output", str(tmp_path / "o")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: An output file needs a dataset (--input) to fill it."
    ]
    assert "Flow run" not in done.stdout + done.stderr
