"""The flows on replica groups, on the local Slurm cluster with simulator replicas of known
capacity (1 CPU, 1G each): work starts on the first READY replica, a replica that dies is
replaced and its requests go to the others, every request id is written exactly once, and
nothing is left in squeue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runner import Runner
from prefect.states import Cancelling
from prefect_helpers import FAST, MODEL, REPO, SLOW_SERVER, ClusterJobs, read_records, wait_until

from vec_inf_flows import progress
from vec_inf_flows.errors import VecInfError
from vec_inf_flows.flows import evaluate, serve_and_run
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.models import ServerStatus

pytestmark = pytest.mark.prefect

# 4 sequences x 100 tokens/s per replica; 20-token requests: 0.2 s each, 20 requests/s a replica.
REPLICA_ARGS = ["--max-num-seqs=4", "--sim-tokens-per-second=100"]
SMALL = {"cpus_per_task": 1, "mem_per_node": "1G"}


def write_requests(path: Path, count: int, max_tokens: int = 20) -> str:
    rows = (
        {"id": f"r{n}", "prompt": f"prompt {n}", "max_tokens": max_tokens} for n in range(count)
    )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def assert_each_id_once(output: Path | str, count: int) -> list[dict[str, Any]]:
    records = read_records(output)
    ids = [record["id"] for record in records]
    assert len(ids) == count and set(ids) == {f"r{n}" for n in range(count)}
    assert all(record["ok"] for record in records)
    return records


def engine_pids(job_dir: str) -> list[int]:
    """The engine under a replica's launcher (the launcher's pid is in the job JSON)."""
    directory = Path(job_dir)
    config = json.loads((directory / f"{directory.name}.json").read_text())
    launcher = int(config["launcher_pid"])
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text()
    return [int(pid) for pid in children.split()]


class Sampler:
    """Samples in a thread, every 0.3 s, how many of the test's jobs Slurm lists."""

    def __init__(self, jobs: ClusterJobs) -> None:
        self.jobs = jobs
        self.held: list[tuple[float, int]] = []  # (monotonic time, jobs in squeue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            listed = self.jobs.in_squeue()
            if listed is not None:
                self.held.append((time.monotonic(), len(listed)))
            time.sleep(0.3)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Killer:
    """Kills one READY replica of the test's jobs once ``after`` requests are done."""

    def __init__(self, jobs: ClusterJobs, how: str, after: int) -> None:
        self.jobs, self.how, self.after = jobs, how, after
        self.victim: str | None = None

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if done < self.after or self.victim is not None:
            return
        client = self.jobs.client()
        statuses = client.statuses(self.jobs.ids())
        victim = next(s for s in statuses if s.server_status is ServerStatus.READY)
        self.victim = victim.job_id
        if self.how == "sigkill-engine":
            assert victim.job_dir is not None
            for pid in engine_pids(victim.job_dir):
                os.kill(pid, signal.SIGKILL)
        else:
            subprocess.run(["scancel", victim.job_id], check=True, timeout=30)


@pytest.mark.parametrize("how", ["sigkill-engine", "scancel-job"])
def test_three_replicas_one_killed_mid_run(jobs: ClusterJobs, tmp_path: Path, how: str) -> None:
    count = 1500  # ~25 s on three replicas: the replacement has time to join
    dataset = write_requests(tmp_path / "in.jsonl", count)
    output = tmp_path / "out.jsonl"
    killer = Killer(jobs, how, after=150)
    with progress.listening(killer):
        result = serve_and_run(
            MODEL,
            dataset=dataset,
            output=str(output),
            replicas=3,
            launch_options=jobs.options(REPLICA_ARGS, **SMALL),
            **FAST,
        )
    records = assert_each_id_once(output, count)
    summary = result.replicas
    assert summary is not None and killer.victim is not None
    assert result.server.job_id == summary.group_id
    assert [job.job_id for job in summary.lost] == [killer.victim]
    (replacement,) = summary.replacements
    assert replacement.replaces == killer.victim
    served = {record["replica"] for record in records}
    assert replacement.base_url in served  # it joined and took work
    assert len(served) == 4  # the three first replicas and the replacement
    assert result.workload is not None and result.workload.ok == count
    assert result.metrics is not None
    jobs.assert_none_left()
    statuses = {s.job_id: s.server_status for s in jobs.client().statuses(jobs.ids())}
    assert statuses[killer.victim] in (ServerStatus.FAILED, ServerStatus.SHUTDOWN)
    assert all(s in (ServerStatus.FAILED, ServerStatus.SHUTDOWN) for s in statuses.values())


def test_first_result_follows_the_first_ready_replica(jobs: ClusterJobs, tmp_path: Path) -> None:
    """Two replicas that each need all four GPUs of node2: the second stays PENDING as long as
    the first runs, and the flow neither waits for it nor minds."""
    dataset = write_requests(tmp_path / "in.jsonl", 80)
    first_ready: list[float] = []
    first_result: list[float] = []
    stop = threading.Event()

    def watch_ready() -> None:
        client = jobs.client()
        while not stop.is_set() and not first_ready:
            ids = jobs.ids()
            if ids and any(s.server_status is ServerStatus.READY for s in client.statuses(ids)):
                first_ready.append(time.monotonic())
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_ready, daemon=True)
    watcher.start()
    try:
        with progress.listening(lambda *_: first_result or first_result.append(time.monotonic())):
            result = serve_and_run(
                MODEL,
                dataset=dataset,
                output=str(tmp_path / "out.jsonl"),
                replicas=2,
                launch_options=jobs.options(
                    REPLICA_ARGS, gpus_per_node=4, nodelist="node2", **SMALL
                ),
                ready_timeout=600,
                poll_interval=0.5,
            )
    finally:
        stop.set()
        watcher.join(5)
    assert result.workload is not None and result.workload.ok == 80
    assert result.replicas is not None
    outcomes = sorted(job.outcome for job in result.replicas.jobs)
    assert outcomes == ["never ready", "served"], outcomes  # done without the PENDING one
    assert first_ready and first_result
    assert first_result[0] - first_ready[0] < 10  # the flow's poll and its first task run
    jobs.assert_none_left()


def test_cli_run_with_replicas(
    jobs: ClusterJobs, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    dataset = write_requests(tmp_path / "in.jsonl", 200)
    output = tmp_path / "out.jsonl"
    args = [
        str(REPO / ".venv" / "bin" / "vec-inf-flows"),
        *("run", "serve-and-run", "--model", MODEL, "--engine", "sim", "--replicas", "3"),
        *("--cpus-per-task", "1", "--mem-per-node", "1G", "--time", "00:10:00"),
        *("--log-dir", str(jobs.log_dir), "--vllm-args", ",".join(REPLICA_ARGS)),
        *("--input", dataset, "--output", str(output), "--ready-timeout", "600"),
    ]
    done = subprocess.run(args, env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert_each_id_once(output, 200)
    assert "Replicas" in done.stdout and "Group ID" in done.stdout
    assert len(jobs.ids()) >= 3
    jobs.assert_none_left()


def ask_the_endpoint(server: ServerHandle) -> dict[str, Any]:
    """A plain OpenAI-style client: httpx, the base URL and the key; nothing of ours."""
    assert server.base_url is not None
    headers = {"Authorization": f"Bearer {server.bearer()}"} if server.api_key else {}
    answers = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        models = client.get("/models").json()
        for n in range(6):
            reply = client.post(
                "/chat/completions",
                json={
                    "model": server.model_name,
                    "messages": [{"role": "user", "content": f"Hello {n}"}],
                    "max_tokens": 8,
                },
            )
            reply.raise_for_status()
            answers.append(reply.json()["choices"][0]["message"]["content"])
    return {"endpoint": server.base_url, "models": models["data"][0]["id"], "answers": answers}


def test_the_router_endpoint_serves_a_plain_client(jobs: ClusterJobs) -> None:
    state = serve_and_run(
        MODEL,
        workload=ask_the_endpoint,
        replicas=2,
        router="job",
        launch_options=jobs.options(REPLICA_ARGS, **SMALL),
        return_state=True,
        **FAST,
    )
    result = state.result()
    assert result.custom is not None and len(result.custom["answers"]) == 6
    assert result.custom["models"] == MODEL
    assert result.replicas is not None and result.replicas.router_job_id is not None
    assert result.custom["endpoint"] == result.replicas.endpoint == result.server.base_url
    jobs.assert_none_left()
    # The run's artifacts show the group at launch and what it did, endpoint included.
    with get_client(sync_client=True) as api:
        found = api.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    tables = {artifact.key: json.dumps(artifact.data) for artifact in found if artifact.key}
    assert result.replicas.group_id in tables["vec-inf-group-smollm2-135m-instruct"]
    assert str(result.replicas.endpoint) in tables["vec-inf-replicas-smollm2-135m-instruct"]


def test_evaluate_shares_one_replica_budget_across_models(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    """Two models of two replicas each under a budget of three replicas for the whole run:
    never more than three are queued or running at once, and both models finish."""
    models = [MODEL, "Qwen2.5-0.5B-Instruct"]
    datasets = [write_requests(tmp_path / "a.jsonl", 400), write_requests(tmp_path / "b.jsonl", 40)]
    with Sampler(jobs) as sampler:
        rows = evaluate(
            models,
            datasets,
            output_dir=str(tmp_path / "results"),
            launch_options=jobs.options(REPLICA_ARGS, gpus_per_node=0, **SMALL),
            model_options={models[1]: {"partition": "debug", "qos": "normal"}},  # not a40/m2
            replicas=2,
            max_concurrent_replicas=3,
            **FAST,
        )
    assert [(row.model, row.status) for row in rows] == [
        (model, "ok") for model in models for _ in datasets
    ]
    assert all(row.workload is not None and row.workload.failed == 0 for row in rows)
    groups = {row.replicas.group_id for row in rows if row.replicas is not None}
    assert len(groups) == 2 and {row.job_id for row in rows} == groups
    held = [count for _, count in sampler.held]
    assert max(held) == 3, held  # both groups ran, and the budget held across them
    jobs.assert_none_left()


def requests_running(jobs: ClusterJobs) -> bool:
    """A READY replica of the test's group is generating (the flow is mid-workload)."""
    client = jobs.client()
    for status in client.statuses(jobs.ids()):
        if status.server_status is ServerStatus.READY and "(router)" not in status.model_name:
            try:
                if client.metrics(status.job_id).metrics.requests_running:
                    return True
            except VecInfError:
                continue
    return False


GROUP_FLOW_PROCESS = """
import json, sys
from vec_inf_flows.flows import serve_and_run
model, dataset, output, options = sys.argv[1:5]
serve_and_run(model, dataset=dataset, output=output, launch_options=json.loads(options),
              replicas=2, router="job", ready_timeout=180, poll_interval=0.5)
"""


def test_sigterm_mid_run_tears_down_every_replica_and_the_router(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    dataset = write_requests(tmp_path / "slow.jsonl", 4, max_tokens=1500)
    options = jobs.options([*SLOW_SERVER, "--max-num-seqs=2"], **SMALL)
    log = (tmp_path / "flow.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", GROUP_FLOW_PROCESS, MODEL, dataset, str(tmp_path / "out.jsonl"),
         json.dumps(options)],
        env=subprocess_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(lambda: requests_running(jobs), 180, "a replica serving the flow's requests")
        assert len(jobs.ids()) == 3  # two replicas and the router
        process.send_signal(signal.SIGTERM)
        jobs.assert_none_left()
        assert process.wait(timeout=60) != 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_cancelling_a_replica_run_through_the_api_tears_the_group_down(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    runner = Runner(name="vec-inf-test-cancel-group", query_seconds=1)
    runner.add_flow(serve_and_run, name="cancel-group")
    flow_run: FlowRun = run_deployment(
        "serve-and-run/cancel-group",
        parameters={
            "model_name": MODEL,
            "dataset": write_requests(tmp_path / "slow.jsonl", 4, max_tokens=1500),
            "output": str(tmp_path / "out.jsonl"),
            "launch_options": jobs.options([*SLOW_SERVER, "--max-num-seqs=2"], **SMALL),
            "replicas": 2,
            "router": "job",
            **FAST,
        },
        timeout=0,
    )
    seen: dict[str, Any] = {}

    def cancel_mid_run() -> None:
        try:
            wait_until(lambda: requests_running(jobs), 180, "a replica serving the requests")
            seen["jobs"] = jobs.ids()
        except BaseException as error:
            seen["error"] = error
        finally:  # cancel in any case, or the runner would wait for the slow requests
            with get_client(sync_client=True) as api:
                api.set_flow_run_state(flow_run.id, Cancelling(), force=True)

    canceller = threading.Thread(target=cancel_mid_run, daemon=True)
    canceller.start()
    asyncio.run(runner.start(run_once=True))
    canceller.join(30)

    assert "error" not in seen, seen.get("error")
    assert len(seen["jobs"]) == 3  # two replicas and the router, all labelled with the run
    jobs.assert_none_left()


def test_an_elastic_group_grows_with_the_backlog_and_gives_back_its_tail(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    """600 short requests, then one long one (20 s): the group grows from one replica to three
    while the backlog is deep, and releases two of them (drained, not interrupted) while the
    long request finishes on the third: the two released jobs leave squeue while the long
    request still runs (the drain picks replicas by the generation they hold, not by how many
    requests: one long one outlasts many short ones)."""
    count = 600
    path = tmp_path / "in.jsonl"
    write_requests(path, count)
    with path.open("a") as handle:
        long_one = {"id": "long", "prompt": "tell me everything", "max_tokens": 2000}
        handle.write(json.dumps({**long_one, "ignore_eos": True}) + "\n")
    with Sampler(jobs) as sampler:
        result = serve_and_run(
            MODEL,
            dataset=str(path),
            output=str(tmp_path / "out.jsonl"),
            replicas=3,
            elastic=True,
            launch_options=jobs.options(REPLICA_ARGS, **SMALL),
            **FAST,
        )
        finished = time.monotonic()
    records = read_records(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted([*(f"r{n}" for n in range(count)), "long"])
    assert all(r["ok"] and r["attempts"] == 1 for r in records)  # draining moved nothing
    summary = result.replicas
    assert summary is not None and summary.elastic and summary.peak == 3
    assert len(summary.released) == 2 and not summary.lost
    (long_record,) = [r for r in records if r["id"] == "long"]
    assert long_record["replica"] not in {(j.base_url or "").rstrip("/") for j in summary.released}
    held = sampler.held
    peak_at = [n for _, n in held].index(3)  # the group grew to three jobs in Slurm
    tail = [n for t, n in held[peak_at:] if t < finished - 1]
    assert 1 in tail, held  # the tail ran on one replica while the flow still ran
    jobs.assert_none_left()
