"""The shipped deployments, used the way a Prefect user uses them.

A real ``prefect server start``, the README's deploy commands word for word, a real process
worker started outside the checkout, runs created through the REST API as the UI's Run button
creates them, on the real local Slurm cluster with the simulator engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import POOL, Deployed, wait_until, write_prompts

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
SIM = {"engine": "sim", "time": "00:10:00", "vllm_args": "--sim-startup-delay=0.5"}
FAST = {"ready_timeout": 180, "poll_interval": 0.5}
TIMEOUT_WARNING = "Timeouts in worker threads"
REAPER = "cleanup-orphaned-servers/reaper"
SHIPPED = {"serve-and-run/on-demand", "evaluate/nightly", REAPER}


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_to_the_end(
    deployed: Deployed, deployment: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    run_id = deployed.api.run_deployment(deployed.deployment_id(deployment), parameters)
    return deployed.api.wait_final(run_id)


def explain(deployed: Deployed, run: dict[str, Any]) -> str:
    """What to read when a run did not end as expected: its state and the worker's log."""
    return f"{run['state']}\n--- worker log ---\n{deployed.worker.log.read_text()[-4000:]}"


def assert_no_job_left(deployed: Deployed) -> None:
    wait_until(lambda: not deployed.worker.jobs_in_squeue(), 30, "the run's jobs to leave squeue")


def server_events(deployed: Deployed, run_id: str, expected: set[str]) -> set[str]:
    """The ``vec-inf.server.*`` events related to the run, once all of ``expected`` arrived."""

    def arrived() -> set[str] | None:
        names = {event["event"] for event in deployed.api.events(run_id, "vec-inf.server.")}
        return names if expected <= names else None

    return wait_until(arrived, 30, f"events {sorted(expected)} of run {run_id}")


def test_the_readme_commands_deploy_the_flows_from_the_installed_package(
    deployed: Deployed,
) -> None:
    assert set(deployed.deployments) == SHIPPED
    for name, entry in deployed.deployments.items():
        entrypoint = str(entry["entrypoint"])
        assert entrypoint.startswith("vec_inf_flows.flows.") and ".py" not in entrypoint, name
        assert entry["pull_steps"] == [], name  # nothing to fetch: the package is installed
        assert entry["work_pool_name"] == POOL
        schedules: Any = entry["schedules"]
        active = any(schedule["active"] for schedule in schedules)
        assert active is (name == REAPER), name  # the nightly waits for its datasets
    reaper = deployed.deployments[REAPER]
    assert reaper["parameters"] == {"dry_run": False}
    scheduled = deployed.api.post(
        "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}
    )
    assert {run["deployment_id"] for run in scheduled} <= {reaper["id"]}  # only the reaper


def test_an_on_demand_run_from_the_ui_completes(deployed: Deployed, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    submitted_before = deployed.worker.submissions()
    parameters = {
        "dataset": write_prompts(tmp_path / "prompts.jsonl", 5),
        "output": str(output),
        "launch_options": SIM,
        **FAST,
    }

    run = run_to_the_end(deployed, "serve-and-run/on-demand", parameters)

    assert run["state_type"] == "COMPLETED", explain(deployed, run)
    assert run["parameters"]["model_name"] == MODEL  # the deployment's default
    records = read_records(output)
    assert sorted(record["id"] for record in records) == [f"p{i}" for i in range(5)]
    assert all(record["ok"] for record in records)
    assert deployed.worker.submissions() == submitted_before + 1
    artifacts = deployed.api.artifacts(run["id"])
    keys = {artifact["key"] for artifact in artifacts}
    assert any(str(key).startswith("vec-inf-launch-") for key in keys), keys
    assert any(str(key).startswith("vec-inf-metrics-") for key in keys), keys
    progress = [artifact for artifact in artifacts if artifact["type"] == "progress"]
    assert progress and progress[0]["data"] == 100.0
    server_events(deployed, run["id"], {"vec-inf.server.ready", "vec-inf.server.shutdown"})
    assert_no_job_left(deployed)
    logs = deployed.api.run_logs(run["id"])
    assert not [line for line in logs if TIMEOUT_WARNING in line]


def test_an_evaluation_from_the_ui_completes_without_timeout_warnings(
    deployed: Deployed, tmp_path: Path
) -> None:
    datasets = [write_prompts(tmp_path / "a.jsonl", 3), write_prompts(tmp_path / "b.jsonl", 4)]
    results = tmp_path / "results"
    parameters = {
        "datasets": datasets,
        "output_dir": str(results),
        "launch_options": SIM,
        **FAST,
    }

    run = run_to_the_end(deployed, "evaluate/nightly", parameters)

    assert run["state_type"] == "COMPLETED", explain(deployed, run)
    artifacts = deployed.api.artifacts(run["id"])
    (table,) = [a for a in artifacts if a["key"] == "vec-inf-evaluation-nightly"]
    rows = json.loads(table["data"])
    assert [(row["Status"], row["OK"], row["Failed"]) for row in rows] == [
        ("ok", "3", "0"),
        ("ok", "4", "0"),
    ]
    (folder,) = (results / "nightly").glob(f"*-{run['id']}")  # the run's own folder
    written = sorted(folder.glob("*/*.results.jsonl"))
    assert [len(read_records(path)) for path in written] == [3, 4]
    server_events(deployed, run["id"], {"vec-inf.server.ready", "vec-inf.server.shutdown"})
    assert_no_job_left(deployed)
    logs = deployed.api.run_logs(run["id"])
    assert not [line for line in logs if TIMEOUT_WARNING in line]


def _not_requests(tmp_path: Path) -> str:
    path = tmp_path / "notes.jsonl"
    path.write_text("these are notes\nnot requests\n")
    return str(path)


BAD_INPUT = {
    "the nightly as shipped": ("evaluate/nightly", lambda tmp: {}, "does not exist"),
    "a missing dataset": (
        "serve-and-run/on-demand",
        lambda tmp: {"dataset": str(tmp / "missing.jsonl")},
        "does not exist",
    ),
    "a file of no requests": (
        "serve-and-run/on-demand",
        lambda tmp: {"dataset": _not_requests(tmp)},
        "no valid request",
    ),
    "a chunk size of 0": (
        "serve-and-run/on-demand",
        lambda tmp: {"dataset": write_prompts(tmp / "p.jsonl", 2), "chunk_size": 0},
        "chunk_size must be at least 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_from_the_ui_fails_before_any_sbatch(
    deployed: Deployed, tmp_path: Path, case: str
) -> None:
    deployment, make_parameters, expected = BAD_INPUT[case]
    sbatch_before = len(deployed.worker.sbatch_calls_made())
    jobs_before = deployed.worker.job_ids()

    run = run_to_the_end(deployed, deployment, {**make_parameters(tmp_path), "launch_options": SIM})

    assert run["state_type"] == "FAILED", explain(deployed, run)
    assert expected in run["state"]["message"], run["state"]["message"]
    assert len(deployed.worker.sbatch_calls_made()) == sbatch_before  # not even --test-only
    assert deployed.worker.job_ids() == jobs_before
