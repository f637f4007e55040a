"""lm-eval through our runner against the real SmolLM2 on the CPU vLLM, on the local Slurm cluster.

A 135M model answers few questions right, so the bar is a plausible band (well above chance on
multiple choice, where chance is 0.25) and the same scores on a second run: greedy decoding on
the same server. Runs here gave 0.625 (generation, last word) and 0.54 (acc) on the bundled
24 + 24 questions with the chat template, at 4 and at 16 requests in flight. acc_norm moved
(0.625 at 4, 0.583 at 16): the CPU engine's batches change its last digits, so it is not
compared.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from real_engine_helpers import CLI, Sandbox, no_engine_processes_left

from vec_inf_flows.evals import LmEvalSpec, run_lm_eval
from vec_inf_flows.evals.history import read_history
from vec_inf_flows.evals.servers import eval_server_for_job

READY_TIMEOUT = 420.0
TASKS = ["vec_inf_qa_gen", "vec_inf_qa_mc"]


def test_smollm2_scores_plausibly_and_reproducibly(sandbox: Sandbox, tmp_path: Path) -> None:
    client = sandbox.client
    launched = client.launch("SmolLM2-135M-Instruct", time="00:20:00")
    client.wait_until_ready(launched.job_id, timeout=READY_TIMEOUT, poll_interval=2)
    server = eval_server_for_job(client, launched.job_id)
    assert server.tokenizer is not None and (server.tokenizer / "tokenizer.json").is_file()
    spec = LmEvalSpec(tasks=TASKS, apply_chat_template=True)

    runs = [run_lm_eval(server, spec, tmp_path / f"run{n}") for n in (1, 2)]
    for report in runs:
        assert report.ok, [t.error for t in report.tasks]
        assert report.invocations == 1
    first, second = runs
    scores = [
        (r.task(TASKS[0]).metric("exact_match"), r.task(TASKS[1]).metric("acc")) for r in runs
    ]
    gen, mc = scores[0]
    assert gen is not None and 0.3 <= gen <= 0.95, scores
    assert mc is not None and 0.35 <= mc <= 0.9, scores
    assert scores[1] == scores[0]
    assert first.task(TASKS[0]).n_samples == second.task(TASKS[1]).n_samples == 24
    client.shutdown(launched.job_id)


def test_evaluate_runs_lm_eval_on_smollm2_and_a_second_run_compares(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """``vec-inf-flows run evaluate`` with both bundled tasks (12 docs each), twice, as a user
    types it: each run launches SmolLM2, scores it, shuts it down; the second run's scores are
    the first's and are compared with them (previous_score, the history)."""
    root = tmp_path / "evaluations"
    env = {
        **sandbox.env,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)  # each run starts (and stops) its own Prefect server
    argv = [
        *CLI, "run", "evaluate",
        "--models", "SmolLM2-135M-Instruct",
        "--lm-eval-task", TASKS[0],
        "--lm-eval-task", TASKS[1],
        "--lm-eval-limit", "12",
        "--lm-eval-chat-template",
        "--output-dir", str(root),
        "--param", "evaluation_name=smollm2-lm-eval",
        "--time", "00:20:00",
        "--ready-timeout", str(READY_TIMEOUT),
        "--json-mode",
    ]  # fmt: skip
    runs = []
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    scores = [{row["dataset"]: row["lm_eval"]["value"] for row in run["result"]} for run in runs]
    gen, mc = scores[0][f"lm-eval:{TASKS[0]}"], scores[0][f"lm-eval:{TASKS[1]}"]
    assert gen is not None and 0.3 <= gen <= 1.0, scores
    assert mc is not None and 0.35 <= mc <= 0.95, scores
    assert scores[1] == scores[0]
    second = runs[1]["result"]
    assert [row["previous_score"] for row in second] == [gen, mc]
    assert [row["lm_eval"]["n_samples"] for row in second] == [12, 12]
    history = read_history(root / "smollm2-lm-eval" / "history.jsonl")
    assert [[(r.scorer, r.score) for r in entry.rows] for entry in history] == [
        [("lm-eval:exact_match", gen), ("lm-eval:acc", mc)]
    ] * 2
    for run in runs:
        no_engine_processes_left(run["result"][0]["job_id"], within=30)
