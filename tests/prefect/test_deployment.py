"""deployments/prefect.yaml: every entrypoint loads, and the on-demand deployment runs locally."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flows import load_flow_from_entrypoint
from prefect.runner import Runner
from prefect_fakes import BASE_URL_ENV, STATE_ENV

from vec_inf_flows.blocks import SlurmCluster

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
DEPLOYMENTS = {entry["name"]: entry for entry in SPEC["deployments"]}


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_entrypoint_loads_and_accepts_the_parameters(name: str) -> None:
    entry = DEPLOYMENTS[name]
    flow = load_flow_from_entrypoint(str(ROOT / entry["entrypoint"]))

    flow.validate_parameters(entry["parameters"])  # raises on a name or type the flow refuses


def test_on_demand_deployment_runs_once_through_a_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vec_inf_flows.flows import serve_and_run

    state = tmp_path / "cluster"
    monkeypatch.setenv("VEC_INF_FLOWS_CLIENT_FACTORY", "prefect_fakes:factory_from_env")
    monkeypatch.setenv(STATE_ENV, str(state))
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9/v1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.getenv("PYTHONPATH", "")])
    )
    SlurmCluster(partition="debug", default_time="00:30:00").save("default", overwrite=True)
    entry = DEPLOYMENTS["on-demand"]

    runner = Runner(name="vec-inf-test-runner", query_seconds=1)
    runner.add_flow(serve_and_run, name="on-demand", parameters=entry["parameters"])
    flow_run = run_deployment(
        "serve-and-run/on-demand",
        parameters={"workload": "prefect_fakes:echo_workload"},
        timeout=0,
    )
    asyncio.run(runner.start(run_once=True))

    with get_client(sync_client=True) as api:
        final = api.read_flow_run(flow_run.id)
    assert final.state is not None and final.state.is_completed(), final.state
    assert final.parameters["model_name"] == "SmolLM2-135M-Instruct"
    jobs = json.loads((state / "jobs.json").read_text())
    assert [job["status"] for job in jobs.values()] == ["SHUTDOWN"]
