"""lm-eval through our runner against the simulator in answer mode: the scores are known exactly.

Every test here runs the real ``lm_eval`` (from the lm-eval extra) as a subprocess against the
simulator over real HTTP; the tokenizer is a real Hugging Face tokenizer folder (built from the
bundled questions) that both lm-eval and the simulator read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eval_helpers import SERVED, AnswerSim, sim_args
from lm_eval_kit import missing_data_task

from vec_inf_flows.evals import EvalServer, LmEvalSpec, run_lm_eval
from vec_inf_flows.evals.task_files import bundled_task_names
from vec_inf_flows.sim.process import SimServer

TASKS = ["vec_inf_qa_gen", "vec_inf_qa_mc"]


def _server(sim: AnswerSim, **changes: object) -> EvalServer:
    server = EvalServer(
        model=SERVED, base_url=sim.sim.base_url, tokenizer=sim.tokenizer, num_concurrent=4
    )
    return server.model_copy(update=changes)


def _posts(sim: SimServer) -> int:
    return sim.stdout_path.read_text().count('"POST /v1/completions HTTP/1.1" 200')


def test_the_bundled_tasks_are_found_by_name() -> None:
    assert bundled_task_names() == TASKS


def test_exact_scores_for_generation_and_multiple_choice(
    answer_sim: AnswerSim, tmp_path: Path
) -> None:
    report = run_lm_eval(_server(answer_sim), LmEvalSpec(tasks=TASKS), tmp_path)
    assert report.ok and report.invocations == 1
    gen, mc = report.task("vec_inf_qa_gen"), report.task("vec_inf_qa_mc")
    assert gen.metric("exact_match", "last_word") == answer_sim.expected_gen == 19 / 24
    assert mc.metric("acc") == answer_sim.expected_mc == 17 / 24
    assert mc.metric("acc_norm") == answer_sim.expected_mc
    assert (gen.n_samples, mc.n_samples) == (24, 24)
    stderr = next(m.stderr for m in mc.metrics if m.name == "acc")
    assert stderr is not None and 0 < stderr < 0.2
    assert gen.results_file is not None and gen.results_file.is_file()
    # the task YAMLs lm-eval read point at the installed package's data, by absolute path
    written = (tmp_path / "tasks" / "2-bundled" / "vec_inf_qa_gen.yaml").read_text()
    assert "/vec_inf_flows/data/lm_eval_tasks/qa_gen.jsonl" in written


def test_batches_chat_template_and_an_api_key(
    tokenizer_dir: Path,
    answers: tuple[Path, float, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batched prompts (list ``prompt``), the chat template, and a server that demands a key:
    the key reaches the server, and no file of the run holds it."""
    key = "sk-eval-test-7f3a9c"
    monkeypatch.setenv("OPENAI_API_KEY", "the-users-openai-key")  # must never be sent to us
    path, expected_gen, expected_mc = answers
    with SimServer(sim_args(tokenizer_dir, path), env={"VLLM_API_KEY": key}) as sim:
        server = EvalServer(
            model=SERVED,
            base_url=sim.base_url,
            tokenizer=tokenizer_dir,
            num_concurrent=4,
            api_key=key,
        )
        spec = LmEvalSpec(tasks=TASKS, batch_size=4, apply_chat_template=True, log_samples=True)
        report = run_lm_eval(server, spec, tmp_path)
        posts = _posts(sim)
    assert report.ok, [t.error for t in report.tasks]
    assert report.task("vec_inf_qa_gen").metric("exact_match") == expected_gen
    assert report.task("vec_inf_qa_mc").metric("acc") == expected_mc
    assert posts == 24 // 4 + 96 // 4  # 24 generations and 96 scored choices, 4 per request
    samples = next((tmp_path / "lm-eval").glob("**/samples_vec_inf_qa_gen_*.jsonl"))
    first = json.loads(samples.read_text().splitlines()[0])
    assert "<|im_start|>user" in json.dumps(first["arguments"])  # the chat template was applied
    for file in tmp_path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            assert key.encode() not in file.read_bytes(), file
            assert file.stat().st_mode & 0o002 == 0, file


def test_a_broken_task_costs_only_its_own_line(answer_sim: AnswerSim, tmp_path: Path) -> None:
    tasks_dir = tmp_path / "my_tasks"
    tasks_dir.mkdir()
    (tasks_dir / "broken.yaml").write_text(
        missing_data_task("my_broken_task", "/nonexistent/questions.jsonl")
    )
    spec = LmEvalSpec(tasks=["vec_inf_qa_gen", "my_broken_task"], include_path=tasks_dir)
    report = run_lm_eval(_server(answer_sim), spec, tmp_path / "run")
    gen, broken = report.task("vec_inf_qa_gen"), report.task("my_broken_task")
    assert gen.ok and gen.metric("exact_match") == answer_sim.expected_gen
    assert not broken.ok and broken.metrics == []
    assert broken.error is not None and "\n" not in broken.error
    assert broken.error.startswith("FileNotFoundError: ")
    assert "/nonexistent/questions.jsonl" in broken.error
    assert report.invocations == 3  # together, then each task alone


def test_a_rerun_into_the_same_folder_never_reports_old_scores(
    answer_sim: AnswerSim, tmp_path: Path
) -> None:
    first = run_lm_eval(_server(answer_sim), LmEvalSpec(tasks=TASKS[:1], limit=4), tmp_path)
    assert first.ok
    shadow = tmp_path.parent / f"{tmp_path.name}-tasks"
    shadow.mkdir()
    # the same task name, now pointing at missing data
    (shadow / "gen.yaml").write_text(missing_data_task("vec_inf_qa_gen", "/nonexistent/gen.jsonl"))
    spec = LmEvalSpec(tasks=TASKS[:1], limit=4, include_path=shadow)
    second = run_lm_eval(_server(answer_sim), spec, tmp_path)
    assert not second.ok and second.tasks[0].metrics == []
    assert "/nonexistent/gen.jsonl" in (second.tasks[0].error or "")


def test_a_task_failing_mid_run_keeps_the_others_scores(
    answer_sim: AnswerSim, tmp_path: Path
) -> None:
    """Through chat completions, lm-eval generates the first task's answers and then refuses to
    score choices; the rerun of the first task takes its answers from the response cache."""
    spec = LmEvalSpec(tasks=TASKS, endpoint="chat-completions")
    before = _posts(answer_sim.sim)
    report = run_lm_eval(_server(answer_sim), spec, tmp_path)
    gen, mc = report.task("vec_inf_qa_gen"), report.task("vec_inf_qa_mc")
    assert gen.ok and gen.metric("exact_match") == answer_sim.expected_gen
    assert mc.error == (
        "NotImplementedError: Loglikelihood is not supported for chat completions. "
        "Consider using the completions API instead."
    )
    log = (tmp_path / "lm-eval-vec_inf_qa_gen" / "lm-eval.log").read_text()
    assert "Cached requests: 24, Requests remaining: 0" in log
    assert _posts(answer_sim.sim) == before  # chat requests only, and none asked twice
    chats = answer_sim.sim.stdout_path.read_text().count('"POST /v1/chat/completions HTTP/1.1"')
    assert chats == 24


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"base_url": "http://127.0.0.1:9/v1"}, "server http://127.0.0.1:9/v1 unreachable: "),
        ({"model": "other-model"}, "model 'other-model' is not served at "),
        ({"tokenizer": Path("/nonexistent/weights")}, "tokenizer folder not found: "),
        ({"tokenizer": None}, "a tokenizer (the model's weights dir) is required"),
    ],
)
def test_problems_every_task_would_hit_are_one_line_each_without_running(
    answer_sim: AnswerSim, tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    started = time.monotonic()
    report = run_lm_eval(_server(answer_sim, **changes), LmEvalSpec(tasks=TASKS), tmp_path)
    assert time.monotonic() - started < 5
    assert report.invocations == 0
    for task in report.tasks:
        assert not task.ok and task.error is not None and task.error.startswith(expected)


def test_unknown_task_name_is_its_own_line(answer_sim: AnswerSim, tmp_path: Path) -> None:
    report = run_lm_eval(_server(answer_sim), LmEvalSpec(tasks=["no_such_task"]), tmp_path)
    assert report.tasks[0].error == "ValueError: Tasks not found: no_such_task"
    assert report.invocations == 1
