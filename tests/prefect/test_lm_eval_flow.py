"""lm-eval as an engine of ``evaluate``: real Slurm jobs running the simulator in answer mode
(so the exact scores are known from the answers file), the real ``lm_eval`` as a subprocess of
the ``run-lm-eval`` task, the session's Prefect API; the second run goes through the CLI as a
user types it and is compared with the first (history, previous scores, a regression event).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from lm_eval_kit import build_tokenizer, missing_data_task, write_answers
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect_helpers import FAST, MODEL, ClusterJobs, wait_until
from test_evaluations import regression_events, rows_of

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals import LmEvalSpec
from vec_inf_flows.evals.history import read_history
from vec_inf_flows.flows import evaluate

pytestmark = pytest.mark.prefect

CLI = Path(sys.executable).with_name("vec-inf-flows")
GEN, MC, BROKEN = "vec_inf_qa_gen", "vec_inf_qa_mc", "my_broken_task"


def sim_args(answers: Path, weights: Path) -> str:
    return ",".join(
        [
            "--sim-startup-delay=0.3",
            "--max-num-seqs=8",
            "--sim-tokens-per-second=2000",
            f"--sim-answers={answers}",
            f"--sim-tokenizer={weights}",
        ]
    )


def task_runs(flow_run_id: str) -> list[str]:
    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
        )
    return sorted(run.name for run in runs)


def test_evaluate_scores_lm_eval_tasks_exactly_and_compares_runs(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    weights = build_tokenizer(tmp_path / "weights" / MODEL)
    first_answers, second_answers = tmp_path / "answers-1.jsonl", tmp_path / "answers-2.jsonl"
    gen_1, mc_1 = write_answers(first_answers, {0, 5, 11, 17, 23}, {1, 2, 9, 14, 20, 21, 22})
    gen_2, mc_2 = write_answers(second_answers, {0, 5, 11, 17, 23}, set(range(0, 24, 2)))
    assert (gen_1, mc_1, gen_2, mc_2) == (19 / 24, 17 / 24, 19 / 24, 12 / 24)
    my_tasks = tmp_path / "my_tasks"
    my_tasks.mkdir()
    (my_tasks / "broken.yaml").write_text(missing_data_task(BROKEN, "/nonexistent/questions.jsonl"))
    root, name = tmp_path / "evaluations", f"lm-eval-{uuid.uuid4().hex[:8]}"

    first = evaluate(
        [MODEL],
        # acc_norm where a task reports it (the multiple-choice one); the other keeps exact_match
        lm_eval=LmEvalSpec(tasks=[GEN, MC, BROKEN], include_path=my_tasks, metric="acc_norm"),
        output_dir=str(root),
        evaluation_name=name,
        regression_threshold=0.1,
        launch_options=jobs.options(
            model_weights_parent_dir=str(weights.parent),
            vllm_args=sim_args(first_answers, weights),
        ),
        return_state=True,
        **FAST,
    )

    assert first.is_failed()  # the broken task's pair failed; the others kept their scores
    assert f"{MODEL} on lm-eval:{BROKEN} (FileNotFoundError: " in str(first.message)
    rows = {row.dataset: row for row in rows_of(first)}
    assert list(rows) == [f"lm-eval:{GEN}", f"lm-eval:{MC}", f"lm-eval:{BROKEN}"]
    gen, mc, broken = rows.values()
    assert (gen.status, gen.score, gen.scorer) == ("ok", gen_1, "lm-eval:exact_match")
    assert gen.lm_eval is not None and gen.lm_eval.filter == "last_word"
    assert (mc.status, mc.score, mc.scorer) == ("ok", mc_1, "lm-eval:acc_norm")
    assert mc.lm_eval is not None and mc.lm_eval.n_samples == 24
    assert broken.status == "failed" and broken.score is None and broken.error is not None
    assert broken.error.startswith("FileNotFoundError: ") and "\n" not in broken.error
    assert "/nonexistent/questions.jsonl" in broken.error
    assert gen.job_id is not None and gen.job_id == mc.job_id == broken.job_id
    flow_run_id = str(first.state_details.flow_run_id)
    assert [n for n in task_runs(flow_run_id) if n.startswith("lm-eval-")] == [f"lm-eval-{MODEL}"]
    # lm-eval's own files are in the run's folder, under the model
    (folder,) = root.joinpath(name).glob(f"*-{flow_run_id}")
    assert gen.lm_eval.results_file is not None
    assert gen.lm_eval.results_file.is_relative_to(folder / MODEL / "lm-eval")
    assert json.loads(gen.lm_eval.results_file.read_text())["results"][GEN]
    summary = json.loads((folder / "summary.json").read_text())
    assert [(r["dataset"], r["scorer"], r["score"]) for r in summary["rows"]] == [
        (f"lm-eval:{GEN}", "lm-eval:exact_match", gen_1),
        (f"lm-eval:{MC}", "lm-eval:acc_norm", mc_1),
        (f"lm-eval:{BROKEN}", None, None),
    ]
    jobs.assert_none_left()

    # The second run as a user types it: worse multiple-choice answers, no broken task.
    argv = [
        str(CLI), "run", "evaluate",
        "--models", MODEL,
        "--lm-eval-task", GEN,
        "--lm-eval-task", MC,
        "--lm-eval-metric", "acc_norm",
        "--output-dir", str(root),
        "--param", f"evaluation_name={name}",
        "--param", "regression_threshold=0.1",
        "--engine", "sim",
        "--vllm-args", sim_args(second_answers, weights),
        "--model-weights-parent-dir", str(weights.parent),
        "--time", "00:10:00",
        "--log-dir", str(jobs.log_dir),
        "--ready-timeout", "180",
        "--json-mode",
    ]  # fmt: skip
    done = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    payload: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert payload["state"] == "COMPLETED"
    second = {row["dataset"]: row for row in payload["result"]}
    assert [(r["lm_eval"]["value"], r["previous_score"]) for r in second.values()] == [
        (gen_2, gen_1),
        (mc_2, mc_1),
    ]
    history = read_history(root / name / "history.jsonl")
    assert [entry.flow_run_id for entry in history] == [flow_run_id, payload["flow_run_id"]]
    assert [(r.dataset, r.scorer, r.score, r.scored) for r in history[1].rows] == [
        (f"lm-eval:{GEN}", "lm-eval:exact_match", gen_2, 24),
        (f"lm-eval:{MC}", "lm-eval:acc_norm", mc_2, 24),
    ]
    (event,) = wait_until(lambda: regression_events(name), 30, "the regression event")
    assert event["resource"]["vec-inf.dataset"] == f"lm-eval:{MC}"
    assert (event["payload"]["score"], event["payload"]["previous_score"]) == (mc_2, mc_1)
    jobs.assert_none_left()


def test_lm_eval_with_replicas_and_no_router_is_refused_before_any_job(
    jobs: ClusterJobs,
) -> None:
    with pytest.raises(ConfigError, match="lm_eval needs one URL per model"):
        evaluate(
            [MODEL], lm_eval=LmEvalSpec(tasks=[GEN]), replicas=2, launch_options=jobs.options()
        )
    with pytest.raises(ConfigError, match=r"unknown task\(s\) no_such_task: neither bundled"):
        evaluate([MODEL], lm_eval=LmEvalSpec(tasks=["no_such_task"]), **FAST)
    assert jobs.ids() == []


def test_lm_eval_reaches_a_replica_group_through_its_router(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    weights = build_tokenizer(tmp_path / "weights" / MODEL)
    answers = tmp_path / "answers.jsonl"
    gen_score, mc_score = write_answers(answers, {3, 4}, {0, 7, 8})
    state = evaluate(
        [MODEL],
        lm_eval=LmEvalSpec(tasks=[GEN, MC]),
        replicas=2,
        router="job",
        output_dir=str(tmp_path / "evaluations"),
        launch_options=jobs.options(
            model_weights_parent_dir=str(weights.parent),
            vllm_args=sim_args(answers, weights),
            cpus_per_task=1,
            mem_per_node="1G",
        ),
        return_state=True,
        **FAST,
    )
    assert state.is_completed(), state.message
    gen, mc = rows_of(state)
    assert (gen.score, mc.score) == (gen_score, mc_score) == (22 / 24, 21 / 24)
    assert gen.replicas is not None and gen.replicas.endpoint is not None
    assert gen.job_id == gen.replicas.group_id
    assert gen.lm_eval is not None and gen.lm_eval.results_file is not None
    asked = json.loads(gen.lm_eval.results_file.read_text())["config"]["model_args"]
    assert asked["base_url"] == f"{gen.replicas.endpoint.rstrip('/')}/completions"
    assert asked["num_concurrent"] == 16  # --max-num-seqs=8 on each of two replicas
    jobs.assert_none_left()
