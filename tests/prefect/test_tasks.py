"""Task policies on the real cluster: what a launch records, which events a server's life emits,
which faults are retried."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker
from prefect.runtime import flow_run
from prefect_helpers import MODEL, READY_TIMEOUT, ClusterJobs

from vec_inf_flows.errors import ServerError, SlurmPermanentError, SlurmTransientError
from vec_inf_flows.tasks import (
    FLOW_RUN_LABEL,
    is_transient,
    labels_of,
    launch_server,
    shutdown_server,
    wait_until_ready,
)

pytestmark = pytest.mark.prefect

fast_launch = launch_server.with_options(retry_delay_seconds=0)


def test_launch_records_the_flow_run_and_names_the_task_run(jobs: ClusterJobs) -> None:
    @flow
    def named() -> tuple[Any, str]:
        return fast_launch(MODEL, jobs.options(), return_state=True), str(flow_run.id)

    state, flow_run_id = named()
    launched = state.result()
    with get_client(sync_client=True) as api:
        task_run = api.read_task_run(state.state_details.task_run_id)

    assert task_run.name == f"launch-{MODEL}"
    assert {"vec-inf", "gpu-job"} <= set(task_run.tags)
    assert labels_of(launched.job_dir)[FLOW_RUN_LABEL] == flow_run_id
    assert jobs.ids() == [launched.job_id]


def test_a_refused_submission_is_not_retried(jobs: ClusterJobs) -> None:
    @flow
    def refused() -> tuple[str, Any]:
        state = fast_launch(MODEL, jobs.options(partition="nosuch"), return_state=True)
        error = state.result(raise_on_failure=False)
        return repr(error), state.state_details.task_run_id  # plain values: the flow succeeds

    error, task_run_id = refused()

    assert error.startswith("SlurmPermanentError(") and "nosuch" in error
    with get_client(sync_client=True) as api:
        assert api.read_task_run(task_run_id).run_count == 1
    assert jobs.ids() == []


def test_server_life_emits_ready_failed_and_shutdown_events(
    jobs: ClusterJobs, asserting_events_worker: EventsWorker
) -> None:
    @flow
    def lifecycle() -> tuple[str, str]:
        good = fast_launch(MODEL, jobs.options())
        bad = fast_launch(MODEL, jobs.options(sim_args=["--sim-fail-at-startup=kv-cache"]))
        ready = wait_until_ready(good, READY_TIMEOUT, 0.5)
        assert ready.base_url is not None and ready.job_id == good.job_id
        shutdown_server(ready)
        with pytest.raises(ServerError, match="KV cache"):
            wait_until_ready.with_options(retries=0)(bad, READY_TIMEOUT, 0.5)
        return good.job_id, bad.job_id

    good, bad = lifecycle()
    asserting_events_worker.drain()
    client = asserting_events_worker._client
    assert isinstance(client, AssertingEventsClient)
    seen = {(e.event, e.resource.id, e.resource.get("vec-inf.model")) for e in client.events}

    for kind, job_id in [("submitted", good), ("ready", good), ("shutdown", good)]:
        assert (f"vec-inf.server.{kind}", f"vec-inf.server.{job_id}", MODEL) in seen
    assert ("vec-inf.server.failed", f"vec-inf.server.{bad}", MODEL) in seen
    jobs.assert_none_left()


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (SlurmTransientError("timeout"), True),
        (SlurmPermanentError("bad partition"), False),
        (httpx.ConnectError("refused"), True),
        (
            httpx.HTTPStatusError(
                "503",
                request=httpx.Request("GET", "http://x"),
                response=httpx.Response(503),
            ),
            True,
        ),
        (
            httpx.HTTPStatusError(
                "404",
                request=httpx.Request("GET", "http://x"),
                response=httpx.Response(404),
            ),
            False,
        ),
        (ServerError("failed"), False),
    ],
)
def test_transient_classification(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
