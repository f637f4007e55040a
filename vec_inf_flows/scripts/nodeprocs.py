"""Process plumbing of the multi-node supervisor: spawn, reap, and end a whole process tree.

Job-side (copied next to ``nodes.py``; standard library only, Python 3.8+). The supervisor
makes itself a child subreaper, so a process whose parent died is re-parented to it instead of
init, and teardown finds it by walking the tree: Slurm's ``proctrack/linuxproc`` loses such
orphans (a vLLM worker outlived its killed ``vllm serve --headless`` parent in trials).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

GRACE_SECONDS = 3.0  # SIGTERM -> SIGKILL for what is left: below Slurm's KillWait (5 s here)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def log(message: str) -> None:
    sys.stderr.write("[vec-inf-nodes] " + message + "\n")
    sys.stderr.flush()


def fatal(message: str) -> None:
    """A ``vec-inf:`` line: the status classifier takes it as the server's failure reason."""
    sys.stderr.write("vec-inf: " + message + "\n")
    sys.stderr.flush()


def become_subreaper() -> None:
    with contextlib.suppress(Exception):  # Linux only; elsewhere orphans go to init as usual
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def exit_code(status: int) -> int:
    """Like Popen.returncode: -N when killed by signal N."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


class Family:
    """This process's children: spawned by name, reaped here (orphans included)."""

    def __init__(self) -> None:
        self.alive: dict[int, str] = {}
        self.ended: dict[str, int] = {}
        self.stop_signal: int | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum in STOP_SIGNALS and self.stop_signal is None:
            self.stop_signal = signum
        signal_all(list(self.alive), signum)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        pid = os.posix_spawnp(argv[0], argv, env if env is not None else dict(os.environ))
        self.alive[pid] = name
        return pid

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            name = self.alive.pop(pid, None)
            if name is not None:
                self.ended[name] = exit_code(status)

    def teardown(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM every descendant, wait up to the grace, then SIGKILL what is left."""
        if grace > 0:
            signal_all(descendants(os.getpid()), signal.SIGTERM)
            if self._wait_for_none(grace):
                return
        signal_all(descendants(os.getpid()), signal.SIGKILL)
        self._wait_for_none(GRACE_SECONDS)  # bounded: a process stuck in the kernel may linger

    def _wait_for_none(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self.reap()
            if not descendants(os.getpid()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


# vLLM's CPU workers name their shared-memory segments after the port of the distributed init
# (``PORT-pp:0-[0-1]-cpushm_RANK``) and unlink them only on a clean exit. A killed job leaves them
# in /dev/shm (RAM), and a later job that draws the same port dies at start-up with "create shm
# in SHMManager failed. errno: 17" (EEXIST): seen here with 245 of them left by earlier tests.
SHM_DIR = "/dev/shm"
CPU_SHM_MARK = "-cpushm_"
SHM_MIN_AGE_SECONDS = 60.0  # younger ones may belong to an engine between creating and mapping


def mapped_files(directory: str) -> set[str]:
    """The files in DIRECTORY a live process of ours maps (others' maps are not readable)."""
    prefix = os.path.join(directory, "")
    paths: set[str] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith(prefix):
                    paths.add(fields[5].rstrip("\n"))
    return paths


def clear_stale_cpu_shm(shm_dir: str = SHM_DIR, min_age: float = SHM_MIN_AGE_SECONDS) -> list[str]:
    """Remove vLLM CPU segments of this user, older than MIN_AGE seconds, that no live
    process maps; their names. (Another job on the node may be starting its engine.)"""
    try:
        names = [name for name in os.listdir(shm_dir) if CPU_SHM_MARK in name]
    except OSError:
        return []
    in_use = mapped_files(shm_dir) if names else set()
    removed: list[str] = []
    for name in names:
        path = os.path.join(shm_dir, name)
        with contextlib.suppress(OSError):
            stat = os.stat(path)
            old_enough = time.time() - stat.st_mtime >= min_age
            if stat.st_uid == os.getuid() and old_enough and path not in in_use:
                os.unlink(path)
                removed.append(name)
    return removed


def exit_like(code: int) -> None:
    if code < 0:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code if code >= 0 else 128 - code)
