"""Shared pieces of the end-to-end tests (a sandbox per test, the CLI as a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vec_inf_flows.client import VecInfClient

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "vec_inf_flows.cli.main"]
SIM = {"engine": "sim", "time": "00:10:00"}


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
