"""Choosing where jobs run: Slurm when this machine can reach a cluster, else local processes.

Imported by the CLI on every start, so the backends themselves load only once chosen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from vec_inf_flows.errors import ConfigError

if TYPE_CHECKING:
    from vec_inf_flows.backends.base import Backend

BACKEND_ENV = "VEC_INF_BACKEND"
BACKEND_NAMES = ("auto", "slurm", "local")
SINFO_TIMEOUT = 2.0  # seconds; a controller that takes longer is not one to build on


def slurm_configured() -> bool:
    """A Slurm configuration file is here: this machine belongs to a cluster, even when its
    controller is down for a moment (then the user should hear that, not get local jobs)."""
    conf = os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf"
    return os.path.isfile(conf)


def slurm_reachable(timeout: float = SINFO_TIMEOUT) -> bool:
    """``sbatch`` is installed, and either a config file says there is a cluster or ``sinfo``
    gets an answer in time (configless sites)."""
    sinfo = shutil.which("sinfo")
    if shutil.which("sbatch") is None or sinfo is None:
        return False
    if slurm_configured():
        return True
    try:
        result = subprocess.run(
            [sinfo, "--noheader", "--format=%P"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def backend_name(name: str | None = None) -> str:
    """``slurm`` or ``local``: the given name, else ``$VEC_INF_BACKEND``, else detected
    (``auto`` in either place means detect)."""
    given = (name or "auto").strip().lower()
    from_env = given == "auto" and bool(os.environ.get(BACKEND_ENV, "").strip())
    chosen = os.environ[BACKEND_ENV].strip().lower() if from_env else given
    if chosen not in BACKEND_NAMES:
        source = f"${BACKEND_ENV}" if from_env else "backend"
        raise ConfigError(
            f"Unknown {source} {chosen!r}: expected one of {', '.join(BACKEND_NAMES)}."
        )
    if chosen == "auto":
        return "slurm" if slurm_reachable() else "local"
    return chosen


def select_backend(name: str | None = None) -> Backend:
    if backend_name(name) == "slurm":
        from vec_inf_flows.backends.slurm.backend import RetryPolicy, SlurmBackend

        # Interactive commands want an answer soon: fewer tries when the caller says so.
        attempts = os.environ.get("VEC_INF_SLURM_ATTEMPTS", "").strip()
        if attempts.isdigit() and int(attempts) > 0:
            return SlurmBackend(retry=RetryPolicy(attempts=int(attempts)))
        return SlurmBackend()
    from vec_inf_flows.backends.local import LocalBackend

    return LocalBackend()
