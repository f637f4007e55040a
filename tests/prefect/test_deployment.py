"""deployments/prefect.yaml loads; a deployment runs through a Runner on the real cluster, and a
run cancelled through the API while it works has its server shut down."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.flows import load_flow_from_entrypoint
from prefect.runner import Runner
from prefect.states import Cancelling
from prefect_helpers import (
    FAST,
    MODEL,
    SLOW_SERVER,
    ClusterJobs,
    read_records,
    request_in_flight,
    write_prompts,
    write_slow_prompt,
)

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.flows import serve_and_run
from vec_inf_flows.models import ServerStatus

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
DEPLOYMENTS = {entry["name"]: entry for entry in SPEC["deployments"]}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_loads_and_accepts_the_parameters(name: str) -> None:
    entry = DEPLOYMENTS[name]
    flow: Flow[..., Any] = load_flow_from_entrypoint(entry["entrypoint"])  # a module path

    flow.validate_parameters(entry["parameters"])  # raises on a name or type the flow refuses


def start_deployment(name: str, parameters: dict[str, Any]) -> FlowRun:
    """Create the deployment's run and return at once (a runner started next picks it up)."""
    return cast(FlowRun, run_deployment(name, parameters=parameters, timeout=0))


def read_run(flow_run: FlowRun) -> FlowRun:
    with get_client(sync_client=True) as api:
        return api.read_flow_run(flow_run.id)


def run_once(runner: Runner) -> None:
    asyncio.run(runner.start(run_once=True))


def test_on_demand_deployment_runs_once_through_a_runner(jobs: ClusterJobs, tmp_path: Path) -> None:
    SlurmCluster(options=LaunchOptions(log_dir=str(jobs.log_dir), time="00:10:00")).save(
        "default", overwrite=True
    )
    entry = DEPLOYMENTS["on-demand"]
    runner = Runner(name="vec-inf-test-on-demand", query_seconds=1)
    runner.add_flow(serve_and_run, name="on-demand", parameters=entry["parameters"])
    output = tmp_path / "out.jsonl"
    flow_run = start_deployment(
        "serve-and-run/on-demand",
        parameters={
            "dataset": write_prompts(tmp_path / "prompts.jsonl", 5),
            "output": str(output),
            "launch_options": {"engine": "sim", "time": "00:10:00"},
            "cluster": "default",
            **FAST,
        },
    )

    run_once(runner)

    final = read_run(flow_run)
    assert final.state is not None and final.state.is_completed(), final.state
    assert final.parameters["model_name"] == MODEL  # from the deployment
    assert final.name == f"serve-{MODEL}"
    with get_client(sync_client=True) as api:
        schema = api.read_deployment_by_name("serve-and-run/on-demand").parameter_openapi_schema
    assert schema is not None  # what the UI's form is drawn from, as the server stored it
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert sorted(record["id"] for record in read_records(output)) == [f"p{i}" for i in range(5)]
    (job_id,) = jobs.ids()  # the cluster block's log_dir and this test's index were used
    assert Path(jobs.client().status(job_id).job_dir or "").is_relative_to(jobs.log_dir)
    jobs.assert_none_left()


def test_cancelling_a_running_deployment_shuts_its_server_down(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    runner = Runner(name="vec-inf-test-cancel", query_seconds=1)
    runner.add_flow(serve_and_run, name="cancel-me")
    flow_run = start_deployment(
        "serve-and-run/cancel-me",
        parameters={
            "model_name": MODEL,
            "dataset": write_slow_prompt(tmp_path / "slow.jsonl"),
            "output": str(tmp_path / "out.jsonl"),
            "launch_options": jobs.options(sim_args=SLOW_SERVER),
            **FAST,
        },
    )
    seen: dict[str, Any] = {}

    def cancel_mid_request() -> None:
        try:
            seen["job_id"] = request_in_flight(jobs)
        except BaseException as error:
            seen["error"] = error
        finally:  # cancel in any case, or the runner would wait for the slow request
            with get_client(sync_client=True) as api:
                api.set_flow_run_state(flow_run.id, Cancelling(), force=True)

    canceller = threading.Thread(target=cancel_mid_request, daemon=True)
    canceller.start()
    run_once(runner)
    canceller.join(30)

    assert "error" not in seen, seen.get("error")
    jobs.assert_none_left()  # the runner returned only after killing the run
    final = read_run(flow_run)
    assert final.state is not None and final.state.is_cancelled(), final.state
    assert jobs.client().status(seen["job_id"]).server_status is ServerStatus.SHUTDOWN
