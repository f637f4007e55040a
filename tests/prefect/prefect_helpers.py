"""What the Prefect-layer tests share: request files, and the jobs one test put on the real cluster.

Each test gets its own ``VEC_INF_FLOWS_HOME``; the client registers every job it launches in
that directory's job index before releasing it, so the index is the test's label: it names
exactly the jobs this test (or the flow subprocess it started) submitted, whatever else is
running on the shared cluster.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from testkit import POLL_INTERVAL, READY_TIMEOUT, wait_until

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.errors import VecInfError
from vec_inf_flows.jobdir import INDEX_DIR

MODEL = "SmolLM2-135M-Instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
REPO = Path(__file__).resolve().parents[2]
CTLD_SCRIPT = REPO / "scripts" / "slurm" / "ctld.sh"
GONE_WITHIN_S = 30.0
FAST = {"ready_timeout": READY_TIMEOUT, "poll_interval": POLL_INTERVAL}


def write_prompts(path: Path, count: int, max_tokens: int = 4, first_id: int = 0) -> str:
    lines = (
        json.dumps({"id": f"p{i}", "prompt": f"Question {i}?", "max_tokens": max_tokens})
        for i in range(first_id, first_id + count)
    )
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def write_slow_prompt(path: Path) -> str:
    """One request that takes minutes on a server started with ``SLOW_SERVER`` args: a flow
    sending it is reliably in the middle of its workload when the test interrupts it."""
    return write_prompts(path, 1, max_tokens=1500)


SLOW_SERVER = ["--sim-tokens-per-second=2"]


def write_texts(path: Path, count: int) -> str:
    lines = (json.dumps({"id": f"t{i}", "input": f"sentence number {i}"}) for i in range(count))
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def squeue_ids() -> set[str] | None:
    """Main job ids Slurm still lists (het components folded); None if it did not answer."""
    try:
        answer = subprocess.run(
            ["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return None
    if answer.returncode != 0:
        return None
    return {line.split()[0].split("+")[0] for line in answer.stdout.splitlines() if line.strip()}


class ClusterJobs:
    """The jobs of one test: launch options that keep its files in tmp, and what is left."""

    def __init__(self, home: Path, log_dir: Path) -> None:
        self.home = home
        self.log_dir = log_dir

    def options(
        self, sim_args: Sequence[str] = (), startup_delay: float = 0.5, **extra: Any
    ) -> dict[str, Any]:
        """Launch options for a quick simulator job whose files stay under the test's tmp."""
        vllm_args = ",".join([f"--sim-startup-delay={startup_delay}", *sim_args])
        return {
            "engine": "sim",
            "time": "00:10:00",
            "log_dir": str(self.log_dir),
            "vllm_args": vllm_args,
            **extra,
        }

    def client(self) -> VecInfClient:
        return VecInfClient(state_dir=self.home)

    def ids(self) -> list[str]:
        """Every job id this test registered, het components as ``N+k``."""
        index = self.home / INDEX_DIR
        if not index.is_dir():
            return []
        return sorted(entry.name for entry in index.iterdir() if not entry.name.startswith("."))

    def main_ids(self) -> set[str]:
        return {job_id.split("+")[0] for job_id in self.ids()}

    def in_squeue(self) -> set[str] | None:
        listed = squeue_ids()
        return None if listed is None else self.main_ids() & listed

    def assert_none_left(self, within: float = GONE_WITHIN_S) -> None:
        """Zero jobs of this test in squeue within ``within`` seconds."""
        wait_until(
            lambda: self.in_squeue() == set(),
            within,
            f"the test's jobs {sorted(self.main_ids())} to leave squeue",
        )

    def cancel_all(self) -> None:
        ids = sorted(self.main_ids())
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def start_controller() -> None:
    subprocess.run([str(CTLD_SCRIPT), "start"], check=True, capture_output=True, timeout=90)


def stop_controller() -> None:
    subprocess.run([str(CTLD_SCRIPT), "stop"], check=True, capture_output=True, timeout=60)


def request_in_flight(
    jobs: ClusterJobs, timeout: float = READY_TIMEOUT, alive: Callable[[], bool] = lambda: True
) -> str:
    """Wait until the test's one server reports a request running; return its job id.

    ``alive`` tells whether whoever runs the flow is still there (so a crash fails fast).
    """

    def probe() -> str | None:
        if not alive():
            raise AssertionError("the flow ended before its request reached the server")
        ids = jobs.ids()
        if len(ids) != 1:
            return None
        try:
            running = jobs.client().metrics(ids[0]).metrics.requests_running
        except VecInfError:  # not READY yet
            return None
        return ids[0] if running else None

    return wait_until(probe, timeout, "a request in flight on the test's server")
