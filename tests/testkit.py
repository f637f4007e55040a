"""What every test folder shares: one polling helper, one READY timeout, a per-test sandbox
and process checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vec_inf_flows.client import VecInfClient

REPO = Path(__file__).resolve().parents[1]
GUIDE_CUSTOM_MODEL = REPO / "tests" / "fixtures" / "guide" / "my-model-config.yaml"
CLI = [sys.executable, "-m", "vec_inf_flows.cli.main"]
# How long a simulator server may take to become READY: it starts in about a second, but on the
# shared cluster its job may queue behind other people's jobs for a while.
READY_TIMEOUT = 180.0
# The real CPU vLLM: about 30 s of engine start-up, more while other tests load the machine.
REAL_ENGINE_READY_TIMEOUT = 420.0
POLL_INTERVAL = 0.5  # the client's longest pause between status checks in tests

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that; after ``timeout``
    seconds fail with ``what`` was awaited. The one polling loop of the test suite."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Sandbox:
    home: Path
    logs: Path
    env: dict[str, str]
    client: VecInfClient

    def cli(
        self, *args: str, timeout: float = 60, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            cwd=REPO,
            **kwargs,  # type: ignore[arg-type]
        )

    def start_cli(
        self, *args: str, stderr: int | None = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        """The CLI left running (``launch --wait``, ``metrics``); read its stdout line by line."""
        return subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=self.env, cwd=REPO
        )

    def job_ids(self) -> list[str]:
        index = self.home / ".jobs"
        return sorted(p.name for p in index.iterdir()) if index.exists() else []

    def squeue_ids(self) -> set[str]:
        """This sandbox's jobs that Slurm still lists as pending or running."""
        ours = {job_id.split("+")[0] for job_id in self.job_ids()}
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, timeout=30
        ).stdout
        alive = set()
        for line in out.splitlines():
            job_id, state = line.split()
            if job_id.split("+")[0] in ours and state in ("PENDING", "RUNNING", "CONFIGURING"):
                alive.add(job_id)
        return alive


def processes_with_env(variable: str, value: str | Path) -> list[int]:
    """Live pids (not this one, no zombies) whose environment sets ``variable=value``."""
    wanted = f"{variable}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in environ and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class JobProcess:
    pid: int
    session: int  # slurmstepd starts each task in a session of its own
    node: str | None  # SLURMD_NODENAME (both local "nodes" are this one machine)
    argv: list[str]


def job_processes(job_id: str) -> list[JobProcess]:
    """Live processes of the job, with their session, node and argv. Processes that rewrote
    their title over their environment (vLLM's workers do) are not found here: see
    ``sessions_of_job``."""
    found = []
    for pid in processes_with_env("SLURM_JOB_ID", job_id):
        entry = Path(f"/proc/{pid}")
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        node = next((e[16:].decode() for e in environ if e.startswith(b"SLURMD_NODENAME=")), None)
        found.append(JobProcess(pid, int(fields[3]), node, argv))
    return found


def processes_of_job(job_id: str, sessions: frozenset[int] = frozenset()) -> list[int]:
    """Pids of the job: by environment (any backend sets SLURM_JOB_ID), or by one of the job's
    ``sessions`` seen earlier."""
    pids = set(processes_with_env("SLURM_JOB_ID", job_id))
    if sessions:
        for entry in Path("/proc").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if entry.name.isdigit() and fields[0] != "Z" and int(fields[3]) in sessions:
                pids.add(int(entry.name))
    pids.discard(os.getpid())
    return sorted(pids)


def sessions_of_job(job_id: str) -> frozenset[int]:
    """The sessions of the job's running tasks (every step's task leads one), recorded while
    the job runs, so a process whose title hid its environment is still found afterwards."""
    return frozenset(process.session for process in job_processes(job_id))


def engine_pid(job_id: str) -> int:
    """The simulator process of a job (the nodes of the test cluster are this machine)."""
    for pid in processes_of_job(job_id):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:4] == [b"-m", b"vec_inf_flows.sim", b"serve"]:  # not the launcher above it
            return pid
    raise AssertionError(f"no simulator process for job {job_id}")


def no_engine_processes_left(
    job_id: str, within: float = 30.0, sessions: frozenset[int] = frozenset()
) -> None:
    wait_until(
        lambda: not processes_of_job(job_id, sessions),
        within,
        f"the processes of job {job_id} to end (left: {processes_of_job(job_id, sessions)})",
        interval=0.5,
    )


def make_sandbox(tmp_path: Path, monkeypatch: object) -> Sandbox:
    home, logs = tmp_path / "home", tmp_path / "logs"
    setenv = monkeypatch.setenv  # type: ignore[attr-defined]
    delenv = monkeypatch.delenv  # type: ignore[attr-defined]
    setenv("VEC_INF_FLOWS_HOME", str(home))
    setenv("VEC_INF_LOG_DIR", str(logs))
    for variable in ("VEC_INF_CONFIG", "VEC_INF_MODEL_CONFIG", "VEC_INF_CONFIG_DIR"):
        delenv(variable, raising=False)
    delenv("VEC_INF_API_KEY", raising=False)
    return Sandbox(home, logs, dict(os.environ), VecInfClient(state_dir=home))


def cancel_sandbox_jobs(box: Sandbox) -> None:
    ids = sorted({job_id.split("+")[0] for job_id in box.job_ids()})
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def guide_custom_model_config(directory: Path) -> Path:
    """The user guide's custom-model file in ``directory``, its weights directory made real."""
    weights = directory / "model-weights"
    (weights / "Qwen2.5-7B-Instruct-1M").mkdir(parents=True, exist_ok=True)
    config = directory / "my-model-config.yaml"
    config.write_text(GUIDE_CUSTOM_MODEL.read_text().replace("WEIGHTS_DIR", str(weights)))
    return config
