"""Flows and tasks lease their servers; teardown drops the lease, and says how the shutdown went.

Real Slurm jobs running the simulator, the real Prefect API of the session. The leases here are
short (renewed every half second) so renewals show within a test.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL
from prefect_helpers import (
    EMBEDDING_MODEL,
    FAST,
    MODEL,
    READY_TIMEOUT,
    SLOW_SERVER,
    ClusterJobs,
    wait_until,
    write_prompts,
    write_texts,
)
from testkit import engine_pid

from vec_inf_flows.flows import evaluate, serve_and_run
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle import LeasePolicy
from vec_inf_flows.lifecycle.owner import OwnerRecord
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.tasks import launch_server, release_server, release_servers, wait_until_ready
from vec_inf_flows.tasks.leases import process_leases
from vec_inf_flows.tasks.teardown import Outcome

pytestmark = pytest.mark.prefect

QUICK = LeasePolicy(renew_every=0.5, lapse_after=60)


def lease_of(job_dir: str | Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((Path(job_dir) / "lease.json").read_text())
    return loaded


def owner_of(job_dir: str | Path) -> OwnerRecord:
    directory = Path(job_dir)
    config = json.loads((directory / f"{directory.name}.json").read_text())
    owner = OwnerRecord.from_job_json(config)
    assert owner is not None
    return owner


def frozen(job_dir: str | Path, seconds: float = 1.5) -> bool:
    """No renewal for ``seconds`` (three renewal periods of ``QUICK``)."""
    before = lease_of(job_dir)
    time.sleep(seconds)
    return lease_of(job_dir) == before


def test_serve_and_run_leases_its_server_and_drops_the_lease_at_teardown(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    slow = jobs.options(sim_args=["--sim-tokens-per-second=8"])  # ~2 s for the dataset
    dataset = write_prompts(tmp_path / "prompts.jsonl", 2, max_tokens=8)

    state = serve_and_run(
        MODEL, dataset=dataset, launch_options=slow, lease=QUICK, return_state=True, **FAST
    )

    result = state.result()
    job_dir = result.server.job_dir
    assert job_dir is not None
    owner = owner_of(job_dir)
    assert owner.flow_run_id == str(state.state_details.flow_run_id)
    assert owner.prefect_api_url == PREFECT_API_URL.value()
    assert owner.pid == os.getpid()
    assert lease_of(job_dir)["counter"] >= 4  # renewed while the dataset ran
    assert Path(job_dir) not in process_leases().held and frozen(job_dir)
    jobs.assert_none_left()


def test_evaluate_renews_every_server_from_the_one_keeper_of_this_process(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    """Each model runs in its own worker thread; one keeper renews them all, and the same
    keeper renews a server a task launched in another flow of this process."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2, max_tokens=8)
    texts = write_texts(tmp_path / "texts.jsonl", 2)
    slow = jobs.options(sim_args=["--sim-tokens-per-second=8"])

    state = evaluate(
        [MODEL, EMBEDDING_MODEL],
        [prompts, texts],  # each model answers one of them (the run is FAILED for the others)
        launch_options=slow,
        output_dir=str(tmp_path / "out"),
        lease=QUICK,
        return_state=True,
        **FAST,
    )

    assert "2 of 4 model/dataset pairs failed" in (state.message or "")
    job_dirs = [Path(jobs.client().attach(job_id).job_dir or "") for job_id in jobs.ids()]
    assert len(job_dirs) == 2
    leases = [lease_of(directory) for directory in job_dirs]
    assert all(lease["counter"] >= 2 for lease in leases), leases
    assert len({lease["keeper"] for lease in leases}) == 1
    assert len({owner_of(directory).flow_run_id for directory in job_dirs}) == 1
    assert not set(job_dirs) & set(process_leases().held)

    @flow
    def another() -> ServerHandle:
        handle: ServerHandle = launch_server(MODEL, jobs.options(), lease=QUICK)
        release_server(handle)
        return handle

    other = another()
    assert other.job_dir is not None and lease_of(other.job_dir)["keeper"] == leases[0]["keeper"]
    jobs.assert_none_left()


def test_an_attached_server_is_not_leased_by_the_flow(jobs: ClusterJobs, tmp_path: Path) -> None:
    client = jobs.client()
    existing = client.launch(MODEL, **jobs.options())
    client.wait_until_ready(existing.handle, timeout=180, poll_interval=0.5)
    dataset = write_prompts(tmp_path / "prompts.jsonl", 2)

    serve_and_run(job_id=existing.job_id, dataset=dataset, lease=QUICK, **FAST)

    assert not (Path(existing.job_dir) / "lease.json").exists()
    assert client.status(existing.job_id).server_status is ServerStatus.READY


def test_a_task_in_your_own_flow_leases_and_release_server_drops_it(jobs: ClusterJobs) -> None:
    @flow
    def mine() -> tuple[ServerHandle, str, int]:
        server: ServerHandle = launch_server(MODEL, jobs.options(), lease=QUICK)
        server = wait_until_ready(server, READY_TIMEOUT, 0.5)
        assert server.job_dir is not None
        wait_until(lambda: lease_of(server.job_dir or "")["counter"] >= 3, 10, "renewals")
        return server, str(flow_run.id), lease_of(server.job_dir)["counter"]

    server, run_id, _ = mine()  # the run is over; this process still renews the lease
    assert server.job_dir is not None and server.owner is not None
    assert server.owner.flow_run_id == run_id == owner_of(server.job_dir).flow_run_id
    assert not frozen(server.job_dir)

    assert release_server(server) is True
    assert frozen(server.job_dir)
    jobs.assert_none_left()


def test_a_teardown_whose_cancel_fails_still_ends_the_server_by_its_lease(
    jobs: ClusterJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    short = LeasePolicy(renew_every=1, lapse_after=6)

    @flow
    def start() -> ServerHandle:
        server: ServerHandle = launch_server(MODEL, jobs.options(), lease=short)
        return wait_until_ready(server, READY_TIMEOUT, 0.5)

    server = start()
    shims = tmp_path / "bin"
    shims.mkdir()
    scancel = shims / "scancel"
    scancel.write_text("#!/bin/sh\necho 'scancel: error: Access/permission denied' >&2\nexit 1\n")
    scancel.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")

    with caplog.at_level(logging.INFO, logger="vec_inf_flows"):
        assert release_server(server) is False
    assert "stops by itself once the lease lapses" in caplog.text
    monkeypatch.undo()  # scancel works again: only the lease can have ended it below

    started = time.monotonic()
    jobs.assert_none_left(within=6 + 5 + 30)
    print(
        f"cancel failed: job {server.job_id} ended by its lease {time.monotonic() - started:.1f} s"
    )
    status = jobs.client().status(server.job_id)
    assert status.server_status is ServerStatus.SHUTDOWN
    assert (status.detail or "").startswith("owner stopped renewing"), status


def test_a_shutdown_still_settling_is_stopping_not_a_failure(
    jobs: ClusterJobs, caplog: Any
) -> None:
    """A SIGSTOPped engine cannot act on SIGTERM: Slurm ends the job only after KillWait."""
    client = jobs.client()
    launched = client.launch(MODEL, **jobs.options(sim_args=SLOW_SERVER))
    client.wait_until_ready(launched.handle, timeout=180, poll_interval=0.5)
    os.kill(engine_pid(launched.job_id), signal.SIGSTOP)

    with caplog.at_level(logging.INFO, logger="vec_inf_flows"):
        outcomes = release_servers([launched.job_id], timeout=0.5)

    assert outcomes == {launched.job_id: Outcome.STOPPING}
    assert "cancel sent; Slurm was still ending it" in caplog.text
    assert "failed" not in caplog.text
    jobs.assert_none_left(within=60)
    assert client.status(launched.job_id).server_status is ServerStatus.SHUTDOWN
