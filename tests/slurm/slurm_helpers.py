"""Helpers shared by the Slurm tests (a plain module: conftest modules are not importable)."""

from __future__ import annotations

import uuid
from pathlib import Path

from testkit import wait_until

from vec_inf_flows.backends.slurm.backend import RetryPolicy

REPO = Path(__file__).parents[2]
CTLD_SCRIPT = REPO / "scripts" / "slurm" / "ctld.sh"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.2, max_delay=1.0)
__all__ = ["CTLD_SCRIPT", "FAST_RETRY", "REPO", "wait_until"]


def sleeper_script(seconds: int = 60, *, extra: str = "") -> str:
    return f"#!/bin/bash\n#SBATCH --output=/dev/null\n{extra}sleep {seconds}\n"


def unique_name(kind: str = "test") -> str:
    return f"{kind}-vec-inf-{uuid.uuid4().hex[:8]}"


def failing_command(directory: Path, name: str, stderr: str, returncode: int = 1) -> Path:
    """A stand-in for a Slurm command that fails as Slurm does; each call adds a line to
    ``<name>.calls`` next to it."""
    command = directory / name
    calls = directory / f"{name}.calls"
    command.write_text(
        f"#!/bin/sh\necho called >> '{calls}'\necho '{stderr}' >&2\nexit {returncode}\n"
    )
    command.chmod(0o755)
    return command


def calls_of(command: Path) -> int:
    calls = command.parent / f"{command.name}.calls"
    return len(calls.read_text().splitlines()) if calls.exists() else 0
