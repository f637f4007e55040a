"""Run one Slurm command: argv only, a hard timeout, and an environment that cannot change
what Slurm prints.

``SQUEUE_FORMAT``, ``SLURM_TIME_FORMAT``, ``SLURM_CLUSTERS`` and the ``SLURM_*`` variables a
job inherits (when we run inside a job) all alter output or behaviour, so they are dropped;
``SLURM_CONF`` says which cluster to talk to, so it stays. ``TZ=UTC`` makes timestamps
comparable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vec_inf_flows.errors import SlurmNotInstalledError

_SCRUBBED_PREFIXES = ("SQUEUE_", "SACCT_", "SLURM_")
_KEPT = frozenset({"SLURM_CONF"})


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None  # None when we killed it on timeout
    stdout: str
    stderr: str
    duration: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def slurm_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if environ is None else environ
    env = {
        key: value
        for key, value in source.items()
        if key in _KEPT or not key.startswith(_SCRUBBED_PREFIXES)
    }
    env["TZ"] = "UTC"
    return env


def run_command(
    argv: Sequence[str], *, timeout: float, stdin_text: str | None = None
) -> CommandResult:
    """Run ``argv``; on timeout kill its whole process group (wrappers and their children)."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=slurm_environment(),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise SlurmNotInstalledError(
            f"Slurm is not installed: {argv[0]} not found on PATH"
        ) from None
    except PermissionError:
        raise SlurmNotInstalledError(f"Slurm command {argv[0]} is not executable") from None
    try:
        stdout, stderr = process.communicate(stdin_text, timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process)
        try:
            stdout, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
            stdout, stderr = "", ""
        returncode = None
    return CommandResult(tuple(argv), returncode, stdout, stderr, time.monotonic() - started)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
