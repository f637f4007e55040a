"""The user's path: a server launched with the CLI on the local Slurm cluster, then scored.

The simulator runs as a Slurm job in answer mode, with a weights folder holding a real tokenizer;
``eval_server_for_job`` reads the job's files for the tokenizer, concurrency and context length.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from testkit import Sandbox

from vec_inf_flows.evals import LmEvalSpec, run_lm_eval
from vec_inf_flows.evals.servers import eval_server_for_job

pytestmark = pytest.mark.slurm
MODEL = "SmolLM2-135M-Instruct"


def test_a_slurm_launched_server_scores_exactly(
    sandbox: Sandbox,
    tmp_path: Path,
    tokenizer_dir: Path,
    answers: tuple[Path, float, float],
) -> None:
    answers_file, expected_gen, expected_mc = answers
    weights = tmp_path / "weights" / MODEL
    shutil.copytree(tokenizer_dir, weights)
    launched = sandbox.cli(
        "launch",
        MODEL,
        "--engine",
        "sim",
        "--time",
        "00:10:00",
        "--model-weights-parent-dir",
        str(weights.parent),
        "--vllm-args",
        f"--sim-startup-delay=0.3,--max-num-seqs=8,--sim-tokens-per-second=2000,"
        f"--sim-answers={answers_file},--sim-tokenizer={weights}",
        "--json-mode",
    )
    assert launched.returncode == 0, launched.stderr
    job_id = json.loads(launched.stdout)["job_id"]
    sandbox.client.wait_until_ready(job_id, timeout=120, poll_interval=0.5)

    server = eval_server_for_job(sandbox.client, job_id)
    assert (server.model, server.tokenizer) == (MODEL, weights)
    assert (server.num_concurrent, server.max_length) == (8, 2048)
    report = run_lm_eval(
        server, LmEvalSpec(tasks=["vec_inf_qa_gen", "vec_inf_qa_mc"]), tmp_path / "eval"
    )
    assert report.ok, [t.error for t in report.tasks]
    assert report.task("vec_inf_qa_gen").metric("exact_match") == expected_gen
    assert report.task("vec_inf_qa_mc").metric("acc") == expected_mc
    sandbox.client.shutdown(job_id)
