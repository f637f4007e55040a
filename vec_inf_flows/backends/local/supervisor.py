"""The session leader of a local job: runs ``bash SCRIPT`` and records how it ended.

Usage: ``python -m vec_inf_flows.backends.local.supervisor JOB_STATE_DIR SCRIPT``.

The CLI that released the job exits at once, so someone else must outlive the script to write
its exit code: this process, the way slurmstepd does on a node. It ignores the job's SIGTERM
(a cancel signals the whole group; the script decides how to end) and becomes a child
subreaper, so orphans of the job come back to it to be reaped. When the script ends, whatever
it left behind in the group is killed, as Slurm does at the end of a batch step.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vec_inf_flows.backends.local.processes import signal_members
from vec_inf_flows.backends.local.store import write_exit

_PR_SET_CHILD_SUBREAPER = 36
_SWALLOWED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def _become_subreaper() -> None:
    """Linux only; elsewhere orphans go to init, which reaps them anyway."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _swallow(_signum: int, _frame: object) -> None:
    """A handler, not SIG_IGN: ignored signals would stay ignored in the script after exec."""


def _wait_for(pid: int) -> int:
    """Reap children (orphans included) until ``pid`` ends; its exit code, Popen-style."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1  # cannot happen while pid is our child; never hang on it
        if reaped == pid:
            return os.waitstatus_to_exitcode(status)


def _reap_leftovers(timeout: float = 5.0) -> None:
    """Kill what the script left in the group; reap it, but never wait forever on a process
    that moved to another group and ignores us."""
    signal_members(os.getpgrp(), signal.SIGKILL, spare=os.getpid())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped == 0:
            time.sleep(0.02)


def run(job_dir: Path, script: Path) -> int:
    for signum in _SWALLOWED:
        signal.signal(signum, _swallow)
    _become_subreaper()
    try:
        child = subprocess.Popen(["bash", str(script)])
    except OSError as error:
        sys.stderr.write(f"vec-inf-flows: cannot run the job script {script}: {error}\n")
        code = 127
    else:
        code = _wait_for(child.pid)
        child.returncode = code  # reaped above; stop Popen from waiting on it again
    write_exit(job_dir, code, time.time())
    _reap_leftovers()
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m vec_inf_flows.backends.local.supervisor DIR SCRIPT\n")
        sys.exit(2)
    sys.exit(run(Path(args[0]), Path(args[1])))


if __name__ == "__main__":
    main()
