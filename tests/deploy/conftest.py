"""One real Prefect server, the README's deploy commands and one process worker for the session.

The server costs ~15 s to start, so every deployment test shares it; each test asserts on its own
flow runs, and tests run one at a time, so the worker's jobs left in squeue after a test are that
test's.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator

import pytest
from deploy_helpers import (
    REPO,
    Api,
    Deployed,
    Server,
    Worker,
    clean_environment,
    readme_deploy_commands,
)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server.start(tmp_path_factory.mktemp("prefect-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def deployed(
    prefect_server: Server, tmp_path_factory: pytest.TempPathFactory, slurm_cluster: None
) -> Iterator[Deployed]:
    """The README's deploy block, line by line: the commands run from the repository root, the
    worker from a directory outside the checkout."""
    env = clean_environment(
        PREFECT_API_URL=prefect_server.api_url,
        PREFECT_HOME=str(tmp_path_factory.mktemp("deployer-prefect-home")),
    )
    worker_command = None
    for line in readme_deploy_commands():
        if line.startswith("export PREFECT_API_URL="):
            continue  # the test's server stands in for the reader's
        if line.startswith("prefect worker start"):
            worker_command = line
            continue
        done = subprocess.run(
            shlex.split(line, comments=True),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert worker_command is not None, "the README's deploy block starts no worker"
    directory = tmp_path_factory.mktemp("worker")
    assert not directory.resolve().is_relative_to(REPO)
    worker = Worker.start(worker_command, prefect_server.api_url, directory)
    api = Api(prefect_server.api_url)
    try:
        yield Deployed(api, worker, api.deployments())
    finally:
        worker.stop()
        worker.cancel_jobs()
