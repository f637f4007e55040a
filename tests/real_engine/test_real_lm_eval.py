"""lm-eval through our runner against the real SmolLM2 on the CPU vLLM, on the local Slurm cluster.

A 135M model answers few questions right, so the bar is a plausible band (well above chance on
multiple choice, where chance is 0.25) and the same scores on a second run: greedy decoding on
the same server. Runs here gave 0.625 (generation, last word) and 0.54 (acc) on the bundled
24 + 24 questions with the chat template, at 4 and at 16 requests in flight. acc_norm moved
(0.625 at 4, 0.583 at 16): the CPU engine's batches change its last digits, so it is not
compared.
"""

from __future__ import annotations

from pathlib import Path

from real_engine_helpers import Sandbox

from vec_inf_flows.evals import LmEvalSpec, run_lm_eval
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
