"""What the deployment tests share: a real Prefect server, the README's deploy commands, a real
process worker, and the REST calls the UI makes.

Nothing here imports Prefect: the test process talks to the server over HTTP as the UI does,
and every Prefect command runs as the user would run it, in its own process.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from testkit import processes_with_env, wait_until

from vec_inf_flows.jobdir import INDEX_DIR

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEPLOY_MARKER = "<!-- deploy-commands -->"
BIN = Path(sys.executable).parent  # the venv's prefect and vec-inf-flows
POOL = "vec-inf-local"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_prompts(path: Path, count: int) -> str:
    """A request file of ``count`` short completion prompts, ids p0, p1 ..."""
    lines = (
        json.dumps({"id": f"p{i}", "prompt": f"Question {i}?", "max_tokens": 4})
        for i in range(count)
    )
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def readme_deploy_commands() -> list[str]:
    """The lines of the README's deploy block, as the user reads them."""
    text = README.read_text()
    assert DEPLOY_MARKER in text, f"README.md has no {DEPLOY_MARKER} block"
    block = text.split(DEPLOY_MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any Prefect or vec-inf settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "VEC_INF_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.update(extra)
    return env


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the group the process leads, then SIGKILL what is left after ``grace``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # children that outlived their leader
        os.killpg(process.pid, signal.SIGKILL)


def temporary_servers(prefect_home: Path) -> list[int]:
    """Pids of API servers started for a run whose PREFECT_HOME is ``prefect_home``."""
    found = []
    for pid in processes_with_env("PREFECT_HOME", prefect_home):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"prefect_server" in command or b"uvicorn" in command:
            found.append(pid)
    return found


@dataclass
class Server:
    """A real ``prefect server start`` on a free port, with its own home and database."""

    process: subprocess.Popen[bytes]
    api_url: str
    log: Path

    @classmethod
    def start(cls, home: Path, timeout: float = 180.0) -> Server:
        port = free_port()
        log = home / "server.log"
        home.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            # The UI's pages call the API at this URL (Prefect's default is port 4200).
            env=clean_environment(
                PREFECT_HOME=str(home),
                PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
                PREFECT_API_LOG_RETRYABLE_ERRORS="true",  # why a request got 503, in the log
            ),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = cls(process, f"http://127.0.0.1:{port}/api", log)
        try:
            wait_until(server.healthy, timeout, f"the Prefect server on port {port}")
        except AssertionError:
            stop_process_group(process)
            raise AssertionError(log.read_text()[-3000:]) from None
        return server

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prefect server exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.api_url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        stop_process_group(self.process)


class Api:
    """The REST calls the UI makes: deployments, runs, artifacts, events, logs."""

    def __init__(self, api_url: str) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=30)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._call("POST", path, body)

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        """One request, retried on 503 as Prefect's own client does: a busy SQLite server
        answers 'database is locked' with 503 for a moment."""
        for attempt in range(6):
            response = self.http.request(method, path, json=body)
            if response.status_code != 503 or attempt == 5:
                break
            time.sleep(0.5 * 2**attempt)
        response.raise_for_status()
        return response.json()

    def deployments(self) -> dict[str, dict[str, Any]]:
        """Deployments by ``flow/deployment`` name, as ``prefect deployment run`` names them."""
        flows = {flow["id"]: flow["name"] for flow in self.post("/flows/filter", {})}
        return {
            f"{flows[entry['flow_id']]}/{entry['name']}": entry
            for entry in self.post("/deployments/filter", {})
        }

    def run_deployment(self, deployment_id: str, parameters: Mapping[str, Any]) -> str:
        """What the UI's Run button does: a flow run with the form's parameters."""
        created = self.post(
            f"/deployments/{deployment_id}/create_flow_run", {"parameters": dict(parameters)}
        )
        return str(created["id"])

    def flow_run(self, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/flow_runs/{run_id}")
        return found

    def wait_final(self, run_id: str, timeout: float = 300.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            run = self.flow_run(run_id)
            return run if run["state_type"] in FINAL else None

        return wait_until(final, timeout, f"flow run {run_id} to end")

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.post(
            "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
        )
        return found

    def artifact(self, run_id: str, key: str) -> dict[str, Any]:
        """The run's one artifact under ``key``."""
        found = [artifact for artifact in self.artifacts(run_id) if artifact["key"] == key]
        assert len(found) == 1, f"run {run_id}: {len(found)} artifacts {key!r}"
        return found[0]

    def events(self, run_id: str, prefix: str) -> list[dict[str, Any]]:
        body = {
            "filter": {
                "event": {"prefix": [prefix]},
                "related": {"id": [f"prefect.flow-run.{run_id}"]},
            },
            "limit": 50,
        }
        found: list[dict[str, Any]] = self.post("/events/filter", body)["events"]
        return found

    def logs(self, run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200, "sort": "TIMESTAMP_ASC"}
        return [str(entry["message"]) for entry in self.post("/logs/filter", body)]

    def run_logs(self, run_id: str) -> list[str]:
        """The run's logs once the engine's last line ('Finished in state ...') has arrived."""

        def complete() -> list[str] | None:
            lines = self.logs(run_id)
            return lines if any("Finished in state" in line for line in lines) else None

        return wait_until(complete, 30, f"the logs of flow run {run_id}")


@dataclass
class Worker:
    """``prefect worker start`` as the README gives it, in a directory outside the checkout, with
    an ``sbatch`` on PATH that counts its calls before handing over to the real one."""

    process: subprocess.Popen[bytes]
    directory: Path
    home: Path
    sbatch_calls: Path
    log: Path
    command: str
    api_url: str

    @classmethod
    def start(cls, command: str, api_url: str, directory: Path) -> Worker:
        shims, home, prefect_home = directory / "bin", directory / "home", directory / "prefect"
        for folder in (shims, home, prefect_home):
            folder.mkdir(parents=True, exist_ok=True)
        calls, log = directory / "sbatch-calls", directory / "worker.log"
        calls.touch(exist_ok=True)
        real = subprocess.run(
            ["bash", "-c", "command -v sbatch"], capture_output=True, text=True, check=True
        ).stdout.strip()
        shim = shims / "sbatch"
        shim.write_text(
            f'#!/bin/sh\necho "$*" >> {shlex.quote(str(calls))}\nexec {shlex.quote(real)} "$@"\n'
        )
        shim.chmod(0o755)
        env = clean_environment(
            PREFECT_API_URL=api_url,
            PREFECT_HOME=str(prefect_home),
            PREFECT_WORKER_QUERY_SECONDS="1",  # pick runs up within a second, not ten
            # Runs persist what they return, so a test can compare it with what the UI shows.
            PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
            VEC_INF_FLOWS_HOME=str(home),
            VEC_INF_LOG_DIR=str(directory / "logs"),
        )
        env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
        process = subprocess.Popen(
            shlex.split(command, comments=True),
            cwd=directory,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(process, directory, home, calls, log, command, api_url)

    def restart(self) -> None:
        """A new worker process in the same directory, with the same job index (after a test
        killed this one): the session's later tests keep a worker."""
        stop_process_group(self.process)
        self.process = Worker.start(self.command, self.api_url, self.directory).process

    def sbatch_calls_made(self) -> list[str]:
        """The arguments of every sbatch call (a launch checks with ``--test-only`` first)."""
        return self.sbatch_calls.read_text().splitlines()

    def submissions(self) -> int:
        return sum("--test-only" not in call for call in self.sbatch_calls_made())

    def job_ids(self) -> set[str]:
        """Every job the worker's runs registered (main ids)."""
        index = self.home / INDEX_DIR
        if not index.is_dir():
            return set()
        return {entry.name.split("+")[0] for entry in index.iterdir() if entry.name[0] != "."}

    def jobs_in_squeue(self) -> set[str]:
        listed = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
        return self.job_ids() & {job_id.split("+")[0] for job_id in listed}

    def cancel_jobs(self) -> None:
        if ids := sorted(self.job_ids()):
            subprocess.run(["scancel", *ids], capture_output=True, timeout=30)

    def stop(self) -> None:
        stop_process_group(self.process)


def returned_value(run: dict[str, Any]) -> Any:
    """What the flow run returned, read back from the result Prefect persisted for it (the
    worker persists results: see ``Worker.start``). Needs the package's result classes only."""
    stored = run["state"]["data"]
    assert stored and stored.get("storage_key"), f"run {run['id']} persisted no result: {stored}"
    assert stored["serializer"]["type"] == "pickle", stored["serializer"]
    return pickle.loads(base64.b64decode(Path(stored["storage_key"]).read_bytes()))


@dataclass
class Deployed:
    """The session's deployments (by ``flow/deployment`` name), the API, the worker and the
    environment the deploy commands ran with (its ``PREFECT_API_URL`` is the server's)."""

    api: Api
    worker: Worker
    deployments: dict[str, dict[str, Any]]
    env: dict[str, str]

    def deployment_id(self, name: str) -> str:
        return str(self.deployments[name]["id"])
