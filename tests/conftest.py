"""Fixtures every test folder shares; also makes ``testkit`` and ``deploy_helpers`` importable
from every folder."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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
from testkit import Sandbox, cancel_sandbox_jobs, make_sandbox

SLURM_HINT = "run scripts/slurm/up.sh to start the local Slurm cluster"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The local cluster must answer: a missing cluster fails a test, never skips it."""
    if shutil.which("sinfo") is None:
        pytest.fail(f"Slurm is not installed (no sinfo on PATH): {SLURM_HINT}")
    try:
        answer = subprocess.run(
            ["sinfo", "--noheader", "--format=%n %t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sinfo did not answer within 30 s: {SLURM_HINT}")
    if answer.returncode != 0 or not answer.stdout.strip():
        pytest.fail(f"sinfo failed ({answer.stderr.strip()}): {SLURM_HINT}")


# A test's tier follows from what it uses, so a marker can never disagree with the test's needs.
_TIER_OF_FIXTURE = {
    "slurm_cluster": "slurm",  # and every fixture built on it (sandbox, jobs ...)
    "cpu_engine": "real_engine",
    "controller_restarted": "disruptive",
    "chromium": "browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, tier in _TIER_OF_FIXTURE.items():
            if fixture in used:
                item.add_marker(tier)
        if item.get_closest_marker("disruptive") is not None:
            item.add_marker("slurm")


@pytest.fixture(autouse=True)
def _needs_cluster(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_cluster")


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: None
) -> Iterator[Sandbox]:
    """A state home and log dir of the test's own; its jobs are cancelled afterwards."""
    box = make_sandbox(tmp_path, monkeypatch)
    try:
        yield box
    finally:
        cancel_sandbox_jobs(box)


# ---------------------------------------------------------------- a deployed Prefect server
# One real server, the README's deploy commands and one process worker for the whole session,
# shared by tests/deploy and tests/ui: the server costs ~15 s to start and the deploy commands
# as much again. Each test asserts on its own flow runs, and tests run one at a time, so the
# worker's jobs left in squeue after a test are that test's.


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
        yield Deployed(api, worker, api.deployments(), env)
    finally:
        worker.stop()
        worker.cancel_jobs()
