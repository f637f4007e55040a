"""Evaluations that evaluate: each run sends every request into a folder of its own, answers are
scored against references, runs are filed in a history, a falling score emits an event, failed
requests are resent on request. Real Slurm jobs running the simulator (its deterministic answer
mode gives known scores), the session's Prefect API, events read back from its events API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL
from prefect_helpers import FAST, MODEL, ClusterJobs, read_records, wait_until, write_prompts

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals.history import read_history
from vec_inf_flows.flows import evaluate, serve_and_run
from vec_inf_flows.results import EvaluationRow, WorkloadFailed

pytestmark = pytest.mark.prefect

CLI = Path(sys.executable).with_name("vec-inf-flows")
QUESTIONS = [  # (id, question, reference)
    ("fr", "What is the capital of France?", "Paris"),
    ("it", "What is the capital of Italy?", "Rome"),
    ("sum", "What is 2 + 2?", "4"),
    ("sky", "What colour is the sky?", "blue"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def questions(path: Path) -> str:
    """Four questions with references, one chat request among them, and one without any."""
    rows: list[dict[str, Any]] = [
        {"id": key, "prompt": question, "expected": answer, "max_tokens": 8}
        for key, question, answer in QUESTIONS[:3]
    ]
    key, question, answer = QUESTIONS[3]
    rows.append(
        {"id": key, "messages": [{"role": "user", "content": question}], "reference": answer}
    )
    rows.append({"id": "free", "prompt": "Say something.", "max_tokens": 4})
    return write_jsonl(path, rows)


def answer_book(path: Path, right: int) -> str:
    """The simulator's answers: the first ``right`` questions answered with their reference."""
    rows = [
        {"prompt": question, "answer": answer if n < right else "no idea"}
        for n, (_, question, answer) in enumerate(QUESTIONS)
    ]
    return write_jsonl(path, rows)


def rows_of(state: Any) -> list[EvaluationRow]:
    result = state.result(raise_on_failure=False)
    rows: list[EvaluationRow] = result.result if isinstance(result, WorkloadFailed) else result
    return rows


def artifact_versions(key: str) -> list[Any]:
    with get_client(sync_client=True) as api:
        return list(
            api.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        )


def test_an_evaluation_run_twice_sends_every_request_both_times(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 6)
    root = tmp_path / "evaluations"
    name = f"twice-{uuid.uuid4().hex[:8]}"
    runs = [
        evaluate(
            [MODEL],
            [prompts],
            output_dir=str(root),
            evaluation_name=name,
            chunk_size=4,
            launch_options=jobs.options(),
            return_state=True,
            **FAST,
        )
        for _ in range(2)
    ]

    rows = [rows_of(state)[0] for state in runs]
    assert all(state.is_completed() for state in runs)
    for row in rows:  # the second run sent everything again: nothing was skipped
        assert row.workload is not None
        assert (row.workload.ok, row.workload.total, row.workload.skipped) == (6, 6, 0)
        assert len(read_records(row.workload.output)) == 6
    folders = [Path(row.workload.output).parents[1] for row in rows if row.workload]
    run_ids = [str(state.state_details.flow_run_id) for state in runs]
    assert folders[0] != folders[1]
    assert all(
        folder.name.endswith(run_id) for folder, run_id in zip(folders, run_ids, strict=True)
    )
    history = read_history(root / name / "history.jsonl")
    assert [entry.flow_run_id for entry in history] == run_ids
    assert [entry.rows[0].ok for entry in history] == [6, 6]
    assert oct((root / name / "history.jsonl").stat().st_mode & 0o777) == "0o644"
    versions = artifact_versions(f"vec-inf-evaluation-{name}")  # one key, a version per run
    assert sorted(str(a.flow_run_id) for a in versions) == sorted(run_ids)
    jobs.assert_none_left()


def test_the_same_model_twice_is_refused_before_any_job(jobs: ClusterJobs, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2)
    with pytest.raises(ConfigError, match=f"models lists '{MODEL}' twice"):
        evaluate([MODEL, MODEL], [prompts], launch_options=jobs.options(), **FAST)
    assert jobs.ids() == []


def regression_events(evaluation: str) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": ["vec-inf.eval.regression"]},
            "resource": {"id": [f"vec-inf.evaluation.{evaluation}"]},
        },
        "limit": 10,
    }
    reply = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30)
    reply.raise_for_status()
    events: list[dict[str, Any]] = reply.json()["events"]
    return events


def test_references_are_scored_and_a_lower_score_emits_a_regression_event(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    dataset = questions(tmp_path / "questions.jsonl")
    name = f"scored-{uuid.uuid4().hex[:8]}"

    def run(right: int) -> Any:
        book = answer_book(tmp_path / f"answers-{right}.jsonl", right)
        return evaluate(
            [MODEL],
            [dataset],
            output_dir=str(tmp_path / "evaluations"),
            evaluation_name=name,
            regression_threshold=0.25,
            launch_options=jobs.options(sim_args=[f"--sim-answers={book}"]),
            return_state=True,
            **FAST,
        )

    first = run(right=3)
    (row,) = rows_of(first)
    assert first.is_completed() and row.workload is not None
    assert (row.workload.score, row.workload.scored, row.workload.scorer) == (0.75, 4, "auto")
    scores = {r["id"]: r.get("score") for r in read_records(row.workload.output)}
    assert scores == {"fr": 1.0, "it": 1.0, "sum": 1.0, "sky": 0.0, "free": None}
    assert regression_events(name) == []

    second = run(right=1)
    (row,) = rows_of(second)
    assert row.workload is not None and row.workload.score == 0.25
    assert row.previous_score == 0.75

    (event,) = wait_until(lambda: regression_events(name), 30, "the regression event")
    resource = event["resource"]
    assert resource["prefect.resource.id"] == f"vec-inf.evaluation.{name}"
    assert (resource["vec-inf.model"], resource["vec-inf.dataset"]) == (MODEL, dataset)
    payload = event["payload"]
    assert (payload["score"], payload["previous_score"], payload["drop"]) == (0.25, 0.75, 0.5)
    assert payload["threshold"] == 0.25
    assert payload["previous_flow_run_id"] == str(first.state_details.flow_run_id)
    related = {item["prefect.resource.id"] for item in event["related"]}
    assert f"prefect.flow-run.{second.state_details.flow_run_id}" in related
    jobs.assert_none_left()


def test_a_retry_of_the_flow_run_resumes_in_its_own_folder(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 8)
    # Every server dies after five answers, with at most two requests running at a time.
    crashing = jobs.options(sim_args=["--sim-crash-after=5", "--max-num-seqs=2"])

    state = evaluate.with_options(retries=1, retry_delay_seconds=0)(
        [MODEL],
        [prompts],
        output_dir=str(tmp_path / "evaluations"),
        launch_options=crashing,
        return_state=True,
        **FAST,
    )

    # The first attempt's server died after five answers; the retry (same flow run, same
    # folder) launched another and sent only the rest.
    assert state.is_completed(), state.message
    (row,) = rows_of(state)
    assert row.workload is not None and row.workload.ok == 8
    assert 5 <= row.workload.skipped < 8
    records = read_records(row.workload.output)
    assert sorted(r["id"] for r in records) == [f"p{i}" for i in range(8)]
    assert len(jobs.main_ids()) == 2  # one server per attempt
    run_id = str(state.state_details.flow_run_id)
    history = read_history(tmp_path / "evaluations" / "default" / "history.jsonl")
    assert [entry.flow_run_id for entry in history] == [run_id, run_id]  # both attempts filed
    assert [entry.rows[0].status for entry in history] == ["failed", "ok"]
    jobs.assert_none_left()


def batch_file(path: Path) -> str:
    """Three short requests and two too long for a server started with --max-model-len=64."""
    long_prompt = " ".join(["word"] * 200)
    rows = [
        {
            "custom_id": f"req-{n}",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"prompt": long_prompt if n in (1, 3) else f"Question {n}?", "max_tokens": 4},
        }
        for n in range(5)
    ]
    return write_jsonl(path, rows)


def test_retry_failed_from_the_cli_resends_only_the_failed_ids_of_a_batch_file(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    dataset, output = batch_file(tmp_path / "batch.jsonl"), tmp_path / "out.jsonl"
    short = jobs.options(sim_args=["--max-model-len=64"])
    first = serve_and_run(MODEL, dataset=dataset, output=str(output), launch_options=short, **FAST)
    assert first.workload is not None and (first.workload.ok, first.workload.failed) == (3, 2)
    before = output.read_bytes().splitlines(keepends=True)
    good = [line for line in before if json.loads(line)["ok"]]
    assert {json.loads(line)["id"] for line in before if line not in good} == {"req-1", "req-3"}

    argv = [
        str(CLI), "run", "serve-and-run", "--model", MODEL, "--engine", "sim",
        "--vllm-args", "--sim-startup-delay=0.5", "--time", "00:10:00",
        "--log-dir", str(jobs.log_dir), "--input", dataset, "--output", str(output),
        "--retry-failed", "--batch-output", "--ready-timeout", "180", "--json-mode",
    ]  # fmt: skip
    done = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert result["metrics"]["successful_requests"] == 2  # the server saw the two failed ids
    after = output.read_bytes().splitlines(keepends=True)
    assert after[:3] == good  # the answered records, byte for byte
    assert all(record["ok"] for record in read_records(output))
    batch = read_records(tmp_path / "out.batch.jsonl")
    assert sorted(line["custom_id"] for line in batch) == [f"req-{n}" for n in range(5)]
    assert all(line["response"]["status_code"] == 200 and not line["error"] for line in batch)
    jobs.assert_none_left()
