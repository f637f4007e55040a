"""The local cluster's own scripts (scripts/slurm/*.sh): a pid file left by a daemon that died
must never stand for a live daemon. CI once hit exactly that: node1's stale pid file named a
pid the kernel had given to another process, up.sh skipped starting node1's slurmd and then
waited 60 s for a node that would never come."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from slurm_helpers import REPO

pytestmark = pytest.mark.slurm

COMMON = REPO / "scripts" / "slurm" / "common.sh"
RUN_DIR = Path("/run/vec-inf-slurm")


def pid_alive(pid_file: Path) -> bool:
    """What the scripts conclude from PID_FILE (bash's own verdict, not a re-implementation)."""
    done = subprocess.run(
        ["bash", "-c", 'source "$1" && pid_alive "$2"', "pid_alive", str(COMMON), str(pid_file)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.returncode == 0


def test_a_pid_file_naming_an_unrelated_process_is_not_a_live_daemon(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"]) as stranger:
        try:
            for name in ("slurmd-node1.pid", "slurmctld.pid", "slurmdbd.pid", "mysqld.pid"):
                (tmp_path / name).write_text(f"{stranger.pid}\n")
                assert not pid_alive(tmp_path / name), name
        finally:
            stranger.kill()


def test_one_nodes_slurmd_does_not_stand_for_the_other(tmp_path: Path) -> None:
    node2 = (RUN_DIR / "slurmd-node2.pid").read_text().strip()
    assert pid_alive(RUN_DIR / "slurmd-node2.pid")
    (tmp_path / "slurmd-node1.pid").write_text(node2)
    assert not pid_alive(tmp_path / "slurmd-node1.pid")


def test_the_running_daemons_are_recognised() -> None:
    for name in ("slurmd-node1.pid", "slurmd-node2.pid", "slurmctld.pid", "slurmdbd.pid"):
        assert pid_alive(RUN_DIR / name), name
    assert pid_alive(Path("/run/munge/munged.pid"))
    assert pid_alive(Path("/run/mysqld/mysqld.pid"))
