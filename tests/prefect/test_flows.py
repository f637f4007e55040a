"""Flows end to end over the client seam: chunked workloads, teardown, attach, evaluate, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect_fakes import FileBackedClient

from vec_inf_flows.blocks import LaunchOverrides
from vec_inf_flows.flows import batch_serve, cleanup, evaluate, serve_and_run
from vec_inf_flows.tasks import launch_server

pytestmark = pytest.mark.prefect

MODEL = "SmolLM2-135M-Instruct"
OPTIONS = LaunchOverrides(engine="sim", time="00:10:00", vllm_args="--sim-startup-delay=1")


def write_dataset(path: Path, n: int) -> str:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in range(n)))
    return str(path)


def artifact_keys(prefix: str) -> set[str]:
    with get_client(sync_client=True) as api:
        found = api.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=prefix))
        )
    return {artifact.key for artifact in found if artifact.key}


def test_serve_and_run_chunks_the_dataset_and_shuts_down(
    fake_client: FileBackedClient, tmp_path: Path
) -> None:
    dataset = write_dataset(tmp_path / "prompts.jsonl", 7)

    result = serve_and_run(
        MODEL, dataset=dataset, chunk_size=3, launch_options=OPTIONS, output_dir=str(tmp_path)
    )

    job = fake_client.jobs()[result["job_id"]]
    assert job["status"] == "SHUTDOWN" and job["shutdowns"] == 1
    assert result["launched"] is True
    assert result["workload"]["chunks"] == 3
    assert result["workload"]["ok"] == 7 and result["workload"]["failed"] == 0
    results = Path(result["workload"]["output"]).read_text().splitlines()
    assert len(results) == 7
    assert result["metrics"]["metrics"]["successful_requests"] == 3
    assert "vec-inf-launch-smollm2-135m-instruct" in artifact_keys("vec-inf-launch-%")
    assert f"vec-inf-metrics-{result['job_id']}" in artifact_keys("vec-inf-metrics-%")


def test_failing_workload_still_shuts_the_server_down(fake_client: FileBackedClient) -> None:
    with pytest.raises(RuntimeError, match="workload broke"):
        serve_and_run(MODEL, workload="prefect_fakes:failing_workload", launch_options=OPTIONS)

    (job,) = fake_client.jobs().values()
    assert job["status"] == "SHUTDOWN"


def test_attached_server_is_used_but_never_shut_down(fake_client: FileBackedClient) -> None:
    existing = fake_client.launch(MODEL)

    result = serve_and_run(job_id=existing.job_id, workload="prefect_fakes:echo_workload")

    assert result["launched"] is False
    assert result["workload"]["base_url"] == fake_client.base_url
    assert fake_client.jobs()[existing.job_id]["status"] == "READY"


def test_evaluate_reports_a_model_that_fails_to_start_and_runs_the_others(
    fake_client: FileBackedClient, tmp_path: Path
) -> None:
    fake_client.failing = {"broken-model"}
    datasets = [
        write_dataset(tmp_path / "a.jsonl", 4),
        write_dataset(tmp_path / "b.jsonl", 2),
    ]

    rows = evaluate(
        [MODEL, "broken-model"],
        datasets,
        max_parallel_servers=2,
        chunk_size=2,
        launch_options=OPTIONS,
        output_dir=str(tmp_path / "out"),
    )

    by_key = {(row["model"], Path(row["dataset"]).name): row for row in rows}
    assert by_key[(MODEL, "a.jsonl")]["ok"] == 4
    assert by_key[(MODEL, "b.jsonl")]["ok"] == 2
    for name in ("a.jsonl", "b.jsonl"):
        failed = by_key[("broken-model", name)]
        assert failed["status"] == "failed"
        assert "No available memory for the cache blocks" in failed["error"]
    assert {job["status"] for job in fake_client.jobs().values()} == {"SHUTDOWN"}
    assert "vec-inf-evaluation" in artifact_keys("vec-inf-evaluation")


def test_batch_serve_runs_every_model_and_cancels_the_leader(
    fake_client: FileBackedClient,
) -> None:
    rows = batch_serve([MODEL, "Qwen2.5-0.5B"], workload="prefect_fakes:echo_workload")

    assert [row["model_name"] for row in rows] == [MODEL, "Qwen2.5-0.5B"]
    jobs = fake_client.jobs()
    assert jobs[rows[0]["job_id"]]["shutdowns"] == 1  # the leader, for the whole het job


def test_cleanup_cancels_only_servers_of_ended_runs(fake_client: FileBackedClient) -> None:
    @flow
    def leaky() -> str:  # ends without tearing its server down, like a SIGKILLed run
        return launch_server(MODEL).job_id

    orphan = leaky()
    by_hand = fake_client.launch(MODEL)  # no flow-run label: not ours to cancel

    planned = cleanup(dry_run=True)
    assert [(row["job_id"], row["action"]) for row in planned] == [(orphan, "would cancel")]
    assert fake_client.jobs()[orphan]["status"] == "PENDING"

    done = cleanup()
    assert [(row["job_id"], row["action"]) for row in done] == [(orphan, "cancelled")]
    jobs = fake_client.jobs()
    assert jobs[orphan]["status"] == "SHUTDOWN"
    assert jobs[by_hand.job_id]["status"] == "PENDING"


def test_library_logs_are_stored_with_the_flow_run(fake_client: FileBackedClient) -> None:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    state = serve_and_run(
        MODEL, workload="prefect_fakes:echo_workload", launch_options=OPTIONS, return_state=True
    )
    APILogHandler().flush()
    with get_client(sync_client=True) as api:
        logs = api.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )

    library = [log.message for log in logs if log.name == "vec_inf_flows"]
    assert any(message.startswith(f"launched {MODEL} as job") for message in library)
