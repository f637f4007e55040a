"""Test doubles for the Prefect layer: a file-backed client at the ``ServerClient`` seam, and a
tiny OpenAI-compatible completions server on loopback for the workload runner to talk to.

The client keeps its jobs in files so a flow running in a subprocess (signal tests, deployment
runs) and the test that inspects it share one truth.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vec_inf_flows.errors import ServerError, SlurmTransientError
from vec_inf_flows.models import (
    BatchLaunchResponse,
    LaunchResponse,
    ServerStatus,
    StatusResponse,
)

STATE_ENV = "FAKE_CLIENT_STATE"
BASE_URL_ENV = "FAKE_CLIENT_BASE_URL"


class FileBackedClient:
    """Jobs that become READY when waited for, unless their model is listed in ``failing``.

    ``launch_faults`` is consumed one per launch: an exception is raised before submitting;
    the string ``"submit-then-transient"`` submits the job and then raises (an ambiguous fault).
    """

    def __init__(
        self,
        state_dir: Path,
        base_url: str = "http://127.0.0.1:9/v1",
        failing: Sequence[str] = (),
        launch_faults: Sequence[BaseException | str] = (),
    ) -> None:
        self.state_dir = state_dir
        self.base_url = base_url
        self.failing = set(failing)
        self.launch_faults = list(launch_faults)
        self.launch_calls = 0
        state_dir.mkdir(parents=True, exist_ok=True)

    # -- state file ---------------------------------------------------------------------------
    @contextmanager
    def _jobs(self) -> Iterator[dict[str, dict[str, Any]]]:
        path = self.state_dir / "jobs.json"
        with open(self.state_dir / "jobs.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            jobs = json.loads(path.read_text()) if path.exists() else {}
            yield jobs
            path.write_text(json.dumps(jobs))

    def jobs(self) -> dict[str, dict[str, Any]]:
        with self._jobs() as jobs:
            return dict(jobs)

    def _status(self, job: Mapping[str, Any]) -> StatusResponse:
        state = ServerStatus(job["status"])
        return StatusResponse(
            job_id=job["job_id"],
            model_name=job["model_name"],
            server_status=state,
            base_url=self.base_url if state is ServerStatus.READY else None,
            failed_reason=job.get("failed_reason"),
            job_dir=job["job_dir"],
        )

    def _submit(self, model_name: str, labels: Mapping[str, str] | None) -> LaunchResponse:
        with self._jobs() as jobs:
            job_id = str(1000 + len(jobs))
            job_dir = self.state_dir / "logs" / f"{model_name}.{job_id}"
            job_dir.mkdir(parents=True)
            config = {"model_name": model_name, "job_id": job_id, "labels": dict(labels or {})}
            (job_dir / f"{job_dir.name}.json").write_text(json.dumps(config))
            jobs[job_id] = {
                "job_id": job_id,
                "model_name": model_name,
                "status": "PENDING",
                "job_dir": str(job_dir),
                "shutdowns": 0,
            }
        return LaunchResponse(
            job_id=job_id,
            job_name=f"{model_name}-vec-inf-0000",
            model_name=model_name,
            job_dir=str(job_dir),
            config=config,
        )

    # -- the ServerClient protocol ------------------------------------------------------------
    def launch(
        self,
        model_name: str,
        options: Any = None,
        *,
        labels: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LaunchResponse:
        self.launch_calls += 1
        fault = self.launch_faults.pop(0) if self.launch_faults else None
        if isinstance(fault, BaseException):
            raise fault
        launched = self._submit(model_name, labels)
        if fault == "submit-then-transient":
            raise SlurmTransientError("sbatch: timed out talking to the controller")
        return launched

    def batch_launch(
        self,
        model_names: Sequence[str],
        batch_config: str | Path | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> BatchLaunchResponse:
        servers = [self._submit(name, labels) for name in model_names]
        return BatchLaunchResponse(
            job_id=servers[0].job_id,
            job_name="BATCH-" + "-".join(model_names),
            job_ids=[server.job_id for server in servers],
            model_names=list(model_names),
            servers=servers,
        )

    def status(self, job_id: str) -> StatusResponse:
        return self._status(self.jobs()[job_id])

    def statuses(self, job_ids: Sequence[str] | None = None) -> list[StatusResponse]:
        jobs = self.jobs()
        return [self._status(jobs[i]) for i in (job_ids if job_ids is not None else jobs)]

    def metrics(self, job_id: str, previous: Any = None) -> Any:
        return {"job_id": job_id, "metrics": {"successful_requests": 3, "avg_latency_s": 0.1}}

    def shutdown(self, job_ids: str | Sequence[str]) -> list[str]:
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        with self._jobs() as jobs:
            for job_id in ids:
                jobs[job_id]["status"] = "SHUTDOWN"
                jobs[job_id]["shutdowns"] += 1
        return ids

    def wait_until_ready(
        self, job_id: str, timeout: float = 1800.0, poll_interval: float = 5.0
    ) -> StatusResponse:
        with self._jobs() as jobs:
            job = jobs[job_id]
            if job["status"] == "SHUTDOWN":
                raise ServerError(f"Server {job_id} is SHUTDOWN before becoming ready.")
            if job["model_name"] in self.failing:
                job["status"] = "FAILED"
                job["failed_reason"] = "ValueError: No available memory for the cache blocks."
                raise ServerError(f"Server {job_id} is FAILED: {job['failed_reason']}")
            job["status"] = "READY"
        return self._status(job)


def factory_from_env(cluster: object) -> FileBackedClient:
    """``VEC_INF_FLOWS_CLIENT_FACTORY=prefect_fakes:factory_from_env`` in a subprocess."""
    return FileBackedClient(
        Path(os.environ[STATE_ENV]),
        base_url=os.environ.get(BASE_URL_ENV, "http://127.0.0.1:9/v1"),
    )


# -- workloads ------------------------------------------------------------------------------------


def echo_workload(base_url: str, model_name: str) -> dict[str, Any]:
    return {"base_url": base_url, "model_name": model_name, "ok": 1}


def failing_workload(base_url: str, model_name: str) -> dict[str, Any]:
    raise RuntimeError("the workload broke")


def blocking_workload(base_url: str, model_name: str) -> dict[str, Any]:
    """Announce that the flow is inside its workload, then wait to be signalled."""
    Path(os.environ[STATE_ENV], "in-workload").write_text(str(os.getpid()))
    time.sleep(120)
    return {}


# -- a completions server -------------------------------------------------------------------------


async def _models(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": [{"id": "SmolLM2-135M-Instruct"}]})


async def _completions(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "text": " Paris.", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    )


@contextmanager
def completions_server() -> Iterator[str]:
    """Serve ``/v1/models`` and ``/v1/completions`` on a free loopback port; yield the base URL."""
    app = Starlette(
        routes=[
            Route("/v1/models", _models),
            Route("/v1/completions", _completions, methods=["POST"]),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
