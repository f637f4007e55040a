"""Segments a killed vLLM CPU engine leaves in /dev/shm are cleared before the next one starts
(one collided with a later job's port in CI: "create shm in SHMManager failed. errno: 17"),
and a segment a live engine maps is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from vec_inf_flows.scripts import nodeprocs

HOLDER = """
import mmap, sys, time
with open(sys.argv[1], "r+b") as f:
    view = mmap.mmap(f.fileno(), 4096)
    print("mapped", flush=True)
    time.sleep(60)
"""


def test_only_unmapped_segments_of_vllm_cpu_are_removed(tmp_path: Path) -> None:
    live = tmp_path / "41001-pp:0-[0-1]-cpushm_0"
    left = tmp_path / "41002-pp:0-[0-1]-cpushm_1"
    other = tmp_path / "some-other-segment"
    young = tmp_path / "41003-pp:0-[0-1]-cpushm_0"  # an engine may be about to map it
    for path in (live, left, other, young):
        path.write_bytes(b"\0" * 4096)
    an_hour_ago = time.time() - 3600
    for path in (live, left, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "mapped"
        assert str(live) in nodeprocs.mapped_files(str(tmp_path))
        assert nodeprocs.clear_stale_cpu_shm(str(tmp_path)) == [left.name]
        assert live.exists() and other.exists() and young.exists() and not left.exists()
    finally:
        holder.kill()
        holder.wait()
    assert nodeprocs.clear_stale_cpu_shm(str(tmp_path)) == [live.name]  # its engine is gone
    assert nodeprocs.clear_stale_cpu_shm(str(tmp_path / "missing")) == []
