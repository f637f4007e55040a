"""Teardown when the flow's process is interrupted mid-request: SIGINT and SIGTERM.

The flow runs ``serve_and_run`` in a child process against the session's API; its one request
is still being generated (slowly, on purpose) when the signal arrives, so the server is
provably up and busy. The flow's ``finally`` must cancel the job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from prefect_helpers import (
    MODEL,
    SLOW_SERVER,
    ClusterJobs,
    request_in_flight,
    write_slow_prompt,
)

from vec_inf_flows.models import ServerStatus

pytestmark = pytest.mark.prefect

FLOW_PROCESS = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored as in a background job
from vec_inf_flows.flows import serve_and_run
model, dataset, output, options = sys.argv[1:5]
serve_and_run(model, dataset=dataset, output=output, launch_options=json.loads(options),
              ready_timeout=180, poll_interval=0.5)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_workload_shuts_the_server_down(
    jobs: ClusterJobs, subprocess_env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    dataset = write_slow_prompt(tmp_path / "slow.jsonl")
    options = jobs.options(sim_args=SLOW_SERVER)
    output = str(tmp_path / "out.jsonl")
    log = (tmp_path / "flow.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", FLOW_PROCESS, MODEL, dataset, output, json.dumps(options)],
        env=subprocess_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            job_id = request_in_flight(jobs, alive=lambda: process.poll() is None)
        except AssertionError:
            raise AssertionError((tmp_path / "flow.log").read_text()[-3000:]) from None
        process.send_signal(signum)

        jobs.assert_none_left()  # within 30 s of the signal
        assert process.wait(timeout=60) != 0
        # Shut down by the flow's teardown (which marks the job), not cancelled behind its back.
        assert jobs.client().status(job_id).server_status is ServerStatus.SHUTDOWN
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
