"""Task policies: what is retried, what is not, and what a retried launch must never do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker
from prefect_fakes import FileBackedClient

from vec_inf_flows.errors import ServerError, SlurmPermanentError, SlurmTransientError
from vec_inf_flows.models import LaunchResponse
from vec_inf_flows.tasks import (
    FLOW_RUN_LABEL,
    is_transient,
    labels_of,
    launch_server,
    shutdown_server,
    wait_until_ready,
)

pytestmark = pytest.mark.prefect

MODEL = "SmolLM2-135M-Instruct"
fast_launch = launch_server.with_options(retry_delay_seconds=0)


@flow
def launch_flow() -> LaunchResponse:
    return fast_launch(MODEL, {"time": "00:05:00", "engine": "sim"})


def test_transient_submit_fault_is_retried_once(fake_client: FileBackedClient) -> None:
    fake_client.launch_faults = [SlurmTransientError("slurmctld did not answer")]

    launched = launch_flow()

    assert fake_client.launch_calls == 2
    assert list(fake_client.jobs()) == [launched.job_id]


def test_permanent_submit_fault_is_not_retried(fake_client: FileBackedClient) -> None:
    fake_client.launch_faults = [SlurmPermanentError("Invalid qos specification")]

    with pytest.raises(SlurmPermanentError, match="Invalid qos"):
        launch_flow()

    assert fake_client.launch_calls == 1
    assert fake_client.jobs() == {}


def test_retry_after_ambiguous_submit_adopts_the_job_instead_of_submitting_again(
    fake_client: FileBackedClient,
) -> None:
    fake_client.launch_faults = ["submit-then-transient"]

    launched = launch_flow()

    assert fake_client.launch_calls == 1  # the second attempt found its job by the launch key
    assert list(fake_client.jobs()) == [launched.job_id]


def test_launch_records_the_flow_run_and_names_the_task_run(
    fake_client: FileBackedClient,
) -> None:
    @flow
    def named() -> tuple[Any, Any]:
        state = fast_launch(MODEL, return_state=True)
        from prefect.runtime import flow_run

        return state, flow_run.id

    state, flow_run_id = named()
    launched = state.result()
    with get_client(sync_client=True) as api:
        task_run = api.read_task_run(state.state_details.task_run_id)

    assert task_run.name == f"launch-{MODEL}"
    assert {"vec-inf", "gpu-job"} <= set(task_run.tags)
    assert labels_of(launched.job_dir)[FLOW_RUN_LABEL] == str(flow_run_id)


def test_ready_and_failed_and_shutdown_emit_server_events(
    fake_client: FileBackedClient, asserting_events_worker: EventsWorker
) -> None:
    fake_client.failing = {"broken-model"}

    @flow
    def lifecycle() -> None:
        good = fast_launch(MODEL)
        bad = fast_launch("broken-model")
        wait_until_ready(good.job_id)
        shutdown_server(good.job_id)
        with pytest.raises(ServerError):
            wait_until_ready(bad.job_id)

    lifecycle()
    asserting_events_worker.drain()
    client = asserting_events_worker._client
    assert isinstance(client, AssertingEventsClient)
    seen = {(e.event, e.resource.id, e.resource.get("vec-inf.model")) for e in client.events}

    assert ("vec-inf.server.ready", "vec-inf.server.1000", MODEL) in seen
    assert ("vec-inf.server.shutdown", "vec-inf.server.1000", MODEL) in seen
    assert ("vec-inf.server.failed", "vec-inf.server.1001", "broken-model") in seen


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
