"""The flows end to end on the local Slurm cluster, with the simulator as the engine.

Every server here is a real Slurm job running ``vec_inf_flows.sim``; requests go over HTTP to
the node it landed on, and every test ends with none of its jobs left in ``squeue``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect_helpers import (
    EMBEDDING_MODEL,
    FAST,
    MODEL,
    READY_TIMEOUT,
    ClusterJobs,
    read_records,
    wait_until,
    write_prompts,
    write_texts,
)

from vec_inf_flows import progress
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.flows import batch_serve, cleanup, evaluate, serve_and_run
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.results import CleanupRow, WorkloadFailed
from vec_inf_flows.tasks import launch_server

pytestmark = pytest.mark.prefect


def artifacts_of(flow_run_id: UUID) -> dict[str, Any]:
    with get_client(sync_client=True) as api:
        found = api.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key or f"{artifact.type}-{artifact.id}": artifact for artifact in found}


def task_run_names(flow_run_id: UUID) -> list[str]:
    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(run.name for run in runs)


def flow_run_name(flow_run_id: UUID) -> str:
    with get_client(sync_client=True) as api:
        return api.read_flow_run(flow_run_id).name


def library_logs(flow_run_id: UUID) -> list[str]:
    APILogHandler().flush()
    with get_client(sync_client=True) as api:
        logs = api.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs if log.name == "vec_inf_flows"]


def test_serve_and_run_sends_the_dataset_in_chunks_and_shuts_down(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    dataset = write_prompts(tmp_path / "prompts.jsonl", 7)
    output = tmp_path / "results" / "out.jsonl"
    seen: list[tuple[str, int, int | None]] = []

    with progress.listening(lambda label, done, total: seen.append((label, done, total))):
        state = serve_and_run(
            MODEL,
            dataset=dataset,
            output=str(output),
            chunk_size=3,
            launch_options=jobs.options(),
            return_state=True,
            **FAST,
        )

    result = state.result()
    assert result.launched is True and (result.server.base_url or "").startswith("http://node")
    assert result.workload is not None and result.workload.chunks == 3
    assert (result.workload.ok, result.workload.failed) == (7, 0)
    latency = result.workload.latency_s
    assert latency.p50 is not None and latency.p95 is not None and latency.p99 is not None
    assert 0 < latency.p50 <= latency.p95 <= latency.p99
    records = read_records(output)
    assert sorted(record["id"] for record in records) == [f"p{i}" for i in range(7)]
    assert all(record["ok"] and record["response"]["choices"] for record in records)
    assert result.metrics is not None
    assert result.metrics.successful_requests == 7  # scraped from the server
    job_id = result.server.job_id
    # One progress report per request, counting across chunks, for the CLI's bar.
    assert [done for _, done, _ in seen] == list(range(1, 8))
    assert {(label, total) for label, _, total in seen} == {(f"{MODEL}: prompts.jsonl", 7)}

    jobs.assert_none_left()
    assert jobs.client().status(job_id).server_status is ServerStatus.SHUTDOWN
    run_id = state.state_details.flow_run_id
    artifacts = artifacts_of(run_id)
    # Keyed by model, not job: the Artifacts page keeps one versioned series per model.
    assert {
        "vec-inf-launch-smollm2-135m-instruct",
        "vec-inf-metrics-smollm2-135m-instruct",
        "vec-inf-workload-smollm2-135m-instruct-prompts",
    } <= set(artifacts)
    (bar,) = [a for a in artifacts.values() if a.type == "progress"]
    assert bar.data == 100.0
    assert f"launched {MODEL} as job {job_id}" in library_logs(run_id)
    # One task run per chunk, plus launch, wait, metrics and shutdown: with the default chunk
    # size a 10 000-request dataset is 24 task runs, well under 50. Names say what each did.
    assert flow_run_name(run_id) == f"serve-{MODEL}"
    assert task_run_names(run_id) == sorted(
        [f"launch-{MODEL}", f"wait-{job_id}", f"metrics-{job_id}", f"shutdown-{job_id}"]
        + [f"chunk-prompts-{n}" for n in range(3)]
    )
    default_chunk = serve_and_run.parameters.properties["chunk_size"]["default"]
    assert -(-10_000 // default_chunk) + 4 <= 50


def test_an_exception_in_the_workload_still_shuts_the_server_down(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    dataset = write_prompts(tmp_path / "prompts.jsonl", 3)
    foreign = tmp_path / "not-ours.jsonl"
    foreign.write_text("this file was not written by vec-inf-flows\nsecond line\n")

    with pytest.raises(ConfigError, match="refusing to append"):
        serve_and_run(
            MODEL, dataset=dataset, output=str(foreign), launch_options=jobs.options(), **FAST
        )

    (job_id,) = jobs.ids()  # the server was up when the workload failed
    jobs.assert_none_left()
    assert jobs.client().status(job_id).server_status is ServerStatus.SHUTDOWN


def test_attaching_to_a_ready_server_uses_it_and_leaves_it_running(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    client = jobs.client()
    existing = client.launch(MODEL, **jobs.options())
    client.wait_until_ready(existing.handle, timeout=READY_TIMEOUT, poll_interval=0.5)
    dataset = write_prompts(tmp_path / "prompts.jsonl", 4)

    result = serve_and_run(
        job_id=existing.job_id, dataset=dataset, output=str(tmp_path / "out.jsonl"), **FAST
    )

    assert result.launched is False and result.server.job_id == existing.job_id
    assert result.workload is not None and result.workload.ok == 4
    assert client.status(existing.job_id).server_status is ServerStatus.READY
    assert jobs.in_squeue() == {existing.job_id}


def test_evaluate_runs_every_model_on_every_dataset(jobs: ClusterJobs, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 3)
    texts = write_texts(tmp_path / "texts.jsonl", 2)

    state = evaluate(
        [MODEL, EMBEDDING_MODEL],
        [prompts, texts],
        max_parallel_servers=2,
        chunk_size=2,
        launch_options=jobs.options(),
        output_dir=str(tmp_path / "out"),
        return_state=True,
        **FAST,
    )

    # Every pair ran; the two where the server cannot answer the kind of request failed, so
    # the run is FAILED, and its message and rows say why.
    assert state.is_failed()
    assert "2 of 4 model/dataset pairs failed" in (state.message or "")
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, WorkloadFailed)
    rows = failure.result
    outcome = {
        (row.model, Path(row.dataset).name): (row.status, row.workload.ok, row.workload.failed)
        for row in rows
        if row.workload is not None
    }
    assert outcome == {
        (MODEL, "prompts.jsonl"): ("ok", 3, 0),
        (MODEL, "texts.jsonl"): ("failed", 0, 2),  # a generate server has no /v1/embeddings
        (EMBEDDING_MODEL, "prompts.jsonl"): ("failed", 0, 3),  # a pooling server cannot complete
        (EMBEDDING_MODEL, "texts.jsonl"): ("ok", 2, 0),
    }
    failed = [row for row in rows if row.status == "failed"]
    assert all(row.error and "0 of" in row.error and " × HTTP " in row.error for row in failed)
    embedded = next(r for r in rows if r.model == EMBEDDING_MODEL and r.status == "ok")
    assert embedded.workload is not None
    embeddings = read_records(embedded.workload.output)
    assert all(len(record["response"]["data"][0]["embedding"]) > 0 for record in embeddings)
    assert len({row.job_id for row in rows}) == 2
    run_id = state.state_details.flow_run_id
    assert flow_run_name(run_id) == f"evaluate-{MODEL}+1"
    chunks = [name for name in task_run_names(run_id) if name.startswith("chunk-")]
    assert chunks == sorted(["chunk-prompts-0", "chunk-prompts-1", "chunk-texts-0"] * 2)
    jobs.assert_none_left()


def test_evaluate_names_a_model_that_fails_to_start_and_finishes_the_others(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", 3)
    broken = jobs.options(sim_args=["--sim-fail-at-startup=kv-cache"])

    state = evaluate(
        [MODEL, EMBEDDING_MODEL],
        [prompts],
        launch_options=jobs.options(),
        model_options={EMBEDDING_MODEL: broken},
        output_dir=str(tmp_path / "out"),
        return_state=True,
        **FAST,
    )

    assert state.is_failed() and "KV cache" in (state.message or "")
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, WorkloadFailed)
    rows = {row.model: row for row in failure.result}
    assert rows[MODEL].status == "ok"
    assert rows[MODEL].workload is not None and rows[MODEL].workload.ok == 3
    failed = rows[EMBEDDING_MODEL]
    assert failed.status == "failed" and failed.error is not None
    assert "FAILED before becoming ready" in failed.error and "KV cache" in failed.error
    summary = artifacts_of(state.state_details.flow_run_id)["vec-inf-evaluation-default"]
    assert f"failed: {EMBEDDING_MODEL} on {prompts} (ServerError:" in (summary.description or "")
    assert "KV cache" in (summary.description or "")
    jobs.assert_none_left()


def test_batch_serve_runs_both_servers_of_one_het_job(jobs: ClusterJobs, tmp_path: Path) -> None:
    batch_config = tmp_path / "batch.yaml"
    batch_config.write_text(
        f"defaults:\n  engine: sim\n  time: '00:10:00'\n  log_dir: {jobs.log_dir}\n"
    )
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        Path(write_prompts(tmp_path / "p.jsonl", 2)).read_text()
        + Path(write_texts(tmp_path / "t.jsonl", 2)).read_text()
    )

    rows = batch_serve(
        [MODEL, EMBEDDING_MODEL],
        batch_config=str(batch_config),
        dataset=str(mixed),
        output_dir=str(tmp_path / "out"),
        **FAST,
    )

    assert [row.server.model_name for row in rows] == [MODEL, EMBEDDING_MODEL]
    leader = rows[0].server.job_id.split("+")[0]
    assert [row.server.job_id for row in rows] == [f"{leader}+0", f"{leader}+1"]
    for row in rows:  # each server answered its own kind of request and refused the other
        assert row.workload is not None and (row.workload.ok, row.workload.failed) == (2, 2)
        assert len(read_records(row.workload.output)) == 4
    jobs.assert_none_left()


def test_cleanup_cancels_only_servers_whose_run_has_ended(jobs: ClusterJobs) -> None:
    @flow
    def leaky() -> str:  # ends without shutting its server down, like a SIGKILLed run
        launched: ServerHandle = launch_server(MODEL, jobs.options())
        return launched.job_id

    orphan = leaky()  # its lease is still renewed: this process lives on
    by_hand = jobs.client().launch(MODEL, **jobs.options()).job_id  # no flow run: not ours

    def mine(rows: list[CleanupRow]) -> dict[str, tuple[str, str]]:
        return {row.job_id: (row.action, row.reason) for row in rows if row.job_id in jobs.ids()}

    planned = mine(cleanup(dry_run=True))
    assert planned[orphan][0] == "would cancel" and "has ended (Completed)" in planned[orphan][1]
    assert planned[by_hand] == ("kept", "not launched by a flow run")
    assert jobs.in_squeue() == {orphan, by_hand}

    done = cleanup()
    row = next(row for row in done if row.job_id == orphan)
    assert (row.action, row.flow_run_state, row.lease) == ("cancelled", "Completed", "held")
    assert mine(done)[by_hand][0] == "kept"
    wait_until(lambda: jobs.in_squeue() == {by_hand}, 30, "only the unlabelled job to remain")


def test_a_server_that_dies_mid_run_is_replaced_and_the_dataset_resumes(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    """The simulator dies after 6 answered requests; each replacement does too. With enough
    relaunches every id is answered exactly once, and the dead servers are gone."""
    dataset = write_prompts(tmp_path / "prompts.jsonl", 14)
    output = tmp_path / "out.jsonl"
    result = serve_and_run(
        MODEL,
        dataset=dataset,
        output=str(output),
        chunk_size=5,
        relaunches=3,
        launch_options=jobs.options(["--sim-crash-after=6", "--max-num-seqs=2"]),
        **FAST,
    )
    records = read_records(output)
    assert sorted(record["id"] for record in records) == sorted(f"p{i}" for i in range(14))
    assert all(record["ok"] for record in records)
    assert result.workload is not None and 1 <= result.workload.relaunches <= 3
    jobs.assert_none_left()


def test_without_relaunches_a_dead_server_fails_the_run_and_is_torn_down(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    dataset = write_prompts(tmp_path / "prompts.jsonl", 10)
    state = serve_and_run(
        MODEL,
        dataset=dataset,
        output=str(tmp_path / "out.jsonl"),
        relaunches=0,
        launch_options=jobs.options(["--sim-crash-after=3", "--max-num-seqs=2"]),
        return_state=True,
        **FAST,
    )
    assert state.is_failed()
    jobs.assert_none_left()
