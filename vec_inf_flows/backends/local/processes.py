"""Process groups of local jobs: are they alive, and signalling every process in them.

A job is one session whose leader is its supervisor, so its process group id names it. Being
"alive" means a process of the group that is not a zombie: ``killpg(pgid, 0)`` alone succeeds
for a group of unreaped zombies, which is what an init that does not reap orphans leaves
behind. ``/proc`` (Linux) settles that; without it the signal check is all there is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys/kernel/random/boot_id"


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # "R", "S", "Z" ...
    pgid: int
    session: int
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """One ``/proc/<pid>/stat``; the command name may hold spaces or ')' so split after it."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(pid, fields[0], int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def all_stats() -> list[ProcStat]:
    stats: list[ProcStat] = []
    with contextlib.suppress(OSError):
        for entry in _PROC.iterdir():
            if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
                stats.append(stat)
    return stats


def has_proc() -> bool:
    return (_PROC / "self/stat").exists()


@functools.cache
def boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


@functools.cache
def node_name() -> str:
    """The short host name if it resolves here (as ``hostname -s`` on a Slurm node), else
    ``localhost``: the server's URL is built from it, so it must be reachable."""
    short = socket.gethostname().split(".")[0]
    if short:
        with contextlib.suppress(OSError, UnicodeError):
            socket.getaddrinfo(short, None)
            return short
    return "localhost"


class GroupProbe:
    """Liveness of many groups, scanning ``/proc`` at most once per probe."""

    def __init__(self) -> None:
        self._live_groups: set[int] | None = None

    def _scan(self) -> set[int]:
        if self._live_groups is None:
            self._live_groups = {stat.pgid for stat in all_stats() if stat.state != "Z"}
        return self._live_groups

    def alive(self, pgid: int, leader_start_ticks: int | None) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's group took the number: not our job
            return False
        if not has_proc():
            return True
        leader = read_stat(pgid)
        if leader is not None and leader.pgid == pgid:
            if leader_start_ticks is not None and leader.start_ticks != leader_start_ticks:
                return False  # our leader died and its pid now leads someone else's group
            if leader.state != "Z":
                return True
        return pgid in self._scan()


def members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a group."""
    return [stat.pid for stat in all_stats() if stat.pgid == pgid and stat.state != "Z"]


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def signal_members(pgid: int, signum: int, *, spare: int | None = None) -> None:
    """Signal every live member but ``spare``; the whole group where ``/proc`` is missing."""
    if not has_proc():
        signal_group(pgid, signum)
        return
    for pid in members(pgid):
        if pid != spare:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


def wait_until_gone(
    groups: Iterable[tuple[int, int | None]],
    timeout: float,
    *,
    poll: float = 0.05,
) -> set[int]:
    """Wait until no group has a live process; return the pgids still alive at the timeout."""
    pending = dict(groups)
    deadline = time.monotonic() + timeout
    while True:
        probe = GroupProbe()
        pending = {pgid: ticks for pgid, ticks in pending.items() if probe.alive(pgid, ticks)}
        if not pending or time.monotonic() >= deadline:
            return set(pending)
        time.sleep(poll)


def terminate_groups(groups: dict[int, int | None], grace: float) -> None:
    """SIGTERM, ``grace`` seconds (Slurm's KillWait), then SIGKILL.

    The SIGKILL spares the supervisor at first, so it can reap the job and record how it
    ended; then the supervisor goes too if it is still there.
    """
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    stubborn = wait_until_gone(groups.items(), grace)
    for pgid in stubborn:
        signal_members(pgid, signal.SIGKILL, spare=pgid)
    stubborn = wait_until_gone(((p, groups[p]) for p in stubborn), 2.0)
    for pgid in stubborn:
        signal_group(pgid, signal.SIGKILL)
    wait_until_gone(((p, groups[p]) for p in stubborn), 5.0)
