"""Transient Slurm faults under a flow: each is survived, and never at the price of a second job.

The controller outage is real (slurmctld stopped and started as up.sh does). The failing sbatch
is the one fake: a wrapper around the real sbatch, injected where the backend names its
commands, because a submission that fails cleanly cannot be produced on demand otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State
from prefect_helpers import (
    MODEL,
    READY_TIMEOUT,
    ClusterJobs,
    start_controller,
    stop_controller,
    wait_until,
    write_prompts,
)
from pydantic import PrivateAttr

from vec_inf_flows.backends.slurm.backend import RetryPolicy, SlurmBackend
from vec_inf_flows.backends.slurm.commands import SlurmCommands
from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.flows import serve_and_run
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle.lease import LeaseKeeper
from vec_inf_flows.tasks import launch_server

pytestmark = pytest.mark.prefect

CONTROLLER_DOWN = (
    "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
    "(connect failure)"
)
OUTAGE_S = 4.0


@pytest.fixture
def controller_restarted() -> Iterator[None]:
    """Whatever the test does to slurmctld, it runs again afterwards."""
    try:
        yield
    finally:
        start_controller()


class InjectedCluster(SlurmCluster):
    """A cluster whose client submits through a given backend: the one seam a fault needs.
    Passed to the task as an object, as any unsaved block can be."""

    _block_type_slug = "vec-inf-test-injected-cluster"
    _backend: SlurmBackend | None = PrivateAttr(default=None)

    def with_backend(self, backend: SlurmBackend) -> InjectedCluster:
        self._backend = backend
        return self

    def get_client(self, leases: LeaseKeeper | None = None) -> VecInfClient:
        return VecInfClient(backend=self._backend, leases=leases)


def flaky_sbatch(directory: Path, failures: int) -> tuple[Path, Path]:
    """A real sbatch whose first ``failures`` submissions fail as with the controller down
    (the ``--test-only`` preflight always goes through). Each submission is logged."""
    real = shutil.which("sbatch")
    assert real is not None
    calls = directory / "sbatch.calls"
    wrapper = directory / "sbatch"
    wrapper.write_text(
        f"""#!/bin/sh
case " $* " in *" --test-only "*) exec '{real}' "$@" ;; esac
echo submit >> '{calls}'
if [ "$(wc -l < '{calls}')" -le {failures} ]; then
    echo '{CONTROLLER_DOWN}' >&2
    exit 1
fi
exec '{real}' "$@"
"""
    )
    wrapper.chmod(0o755)
    return wrapper, calls


def test_a_failed_submission_is_retried_by_the_task_without_a_duplicate(
    jobs: ClusterJobs, tmp_path: Path
) -> None:
    wrapper, calls = flaky_sbatch(tmp_path, failures=2)
    # Two tries per call: the first task run gives up, the retried one gets through.
    backend = SlurmBackend(
        commands=SlurmCommands(sbatch=str(wrapper)),
        retry=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1),
    )

    cluster = InjectedCluster().with_backend(backend)

    @flow
    def launch() -> State[ServerHandle]:
        return cast(
            State[ServerHandle],
            launch_server.with_options(retry_delay_seconds=0)(
                MODEL, jobs.options(), cluster, return_state=True
            ),
        )

    state = launch()

    launched = state.result()
    with get_client(sync_client=True) as api:
        task_run_id = state.state_details.task_run_id
        assert task_run_id is not None and api.read_task_run(task_run_id).run_count == 2
    assert len(calls.read_text().splitlines()) == 3  # two refused, one accepted
    assert jobs.ids() == [launched.job_id]
    assert jobs.in_squeue() == {launched.job_id}


def job_running(job_id: str) -> bool:
    answer = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30
    )
    return answer.stdout.strip() == "RUNNING"


def wait_task_span(flow_run_id: Any) -> tuple[float, float]:
    """When the flow's wait-until-ready task run started and ended (epoch seconds)."""
    with get_client(sync_client=True) as api:
        runs = api.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    (wait,) = [run for run in runs if run.name.startswith("wait-")]
    assert wait.start_time is not None and wait.end_time is not None
    return wait.start_time.timestamp(), wait.end_time.timestamp()


def test_a_controller_outage_while_waiting_for_ready_is_survived(
    jobs: ClusterJobs, tmp_path: Path, controller_restarted: None
) -> None:
    outage: dict[str, Any] = {}

    def interrupt_the_controller() -> None:
        try:
            job_id = wait_until(
                lambda: (ids := jobs.ids()) and job_running(ids[0]) and ids[0],
                READY_TIMEOUT,
                "the job to start running",
            )
            stop_controller()
            outage["job_id"] = job_id
            time.sleep(OUTAGE_S)  # the outage itself: the flow keeps polling meanwhile
        except BaseException as error:
            outage["error"] = error
        finally:
            outage["restarting"] = time.time()
            start_controller()

    interrupter = threading.Thread(target=interrupt_the_controller, daemon=True)
    interrupter.start()
    state = serve_and_run(
        MODEL,
        dataset=write_prompts(tmp_path / "prompts.jsonl", 3),
        output=str(tmp_path / "out.jsonl"),
        launch_options=jobs.options(startup_delay=3),
        ready_timeout=READY_TIMEOUT,
        poll_interval=0.5,
        return_state=True,
    )
    interrupter.join(READY_TIMEOUT)

    assert "error" not in outage, outage.get("error")
    result = state.result()
    assert result.server.job_id == outage["job_id"]
    assert result.workload is not None and result.workload.ok == 3
    waited_from, ready_at = wait_task_span(state.state_details.flow_run_id)
    # The wait began before the controller came back and ended after: it polled through it.
    assert waited_from < outage["restarting"] < ready_at
    assert jobs.ids() == [result.server.job_id]  # no second job
    jobs.assert_none_left()
