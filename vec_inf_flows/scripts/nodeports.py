"""Ray's ports for one node of a multi-node job, chosen so that they cannot collide.

Job-side (copied next to ``nodes.py``; standard library only, Python 3.8+). Every Ray port is
set explicitly from one block of ``BLOCK_SIZE`` ports:

* below the kernel's ephemeral range, so no port handed out at random (Ray's own, vLLM's, the
  launcher's API port, anyone's) can take it;
* above Ray's default worker range (10002-19999) and clear of Ray's fixed defaults, so Ray's
  "port used by other components" check never trips (a random head port in 8080-65535, as
  vec-inf picks it, landed in the worker range about one launch in six);
* one block per node rank, so two nodes of one job sharing a host cannot collide; the first
  block is hashed from the job id, so two jobs on one node rarely try the same one;
* every port of the block checked free on the node that binds it, just before ``ray start``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import zlib

# Ray's fixed default ports (GCS, dashboard, client server, metrics, agent) and worker range.
RAY_DEFAULT_PORTS = frozenset({6379, 8265, 10001, 44217, 44227, 52365, 52366})
RAY_DEFAULT_WORKER_PORTS = (10002, 19999)
REGION_FLOOR = 20000
BLOCK_SIZE = 128
FIRST_WORKER_PORT = 16  # the offsets below are single ports; the rest of a block: worker ports
# Offsets in a block, and the `ray start` flag (or environment variable) each one fills.
HEAD_PORTS = (
    (0, "--port"),
    (1, "--ray-client-server-port"),
    (2, "--dashboard-port"),
    (9, "AUTOSCALER_METRIC_PORT"),
    (10, "DASHBOARD_METRIC_PORT"),
)
NODE_PORTS = (
    (3, "--dashboard-agent-listen-port"),
    (4, "--dashboard-agent-grpc-port"),
    (5, "--runtime-env-agent-port"),
    (6, "--metrics-export-port"),
    (7, "--node-manager-port"),
    (8, "--object-manager-port"),
)


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low, high = (int(word) for word in handle.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_region(ephemeral: tuple[int, int]) -> tuple[int, int]:
    """The widest stretch above Ray's worker range that the kernel never hands out."""
    low, high = ephemeral
    stretches = [(REGION_FLOOR, low - 1), (max(high + 1, REGION_FLOOR), 65535)]
    usable = [s for s in stretches if s[1] - s[0] + 1 >= 2 * BLOCK_SIZE]
    if not usable:  # everything is ephemeral: the free checks alone must do
        return REGION_FLOOR, 65535
    return max(usable, key=lambda s: s[1] - s[0])


def block_is_clean(start: int) -> bool:
    end = start + BLOCK_SIZE - 1
    low, high = RAY_DEFAULT_WORKER_PORTS
    if start <= high and end >= low:
        return False
    return not any(start <= port <= end for port in RAY_DEFAULT_PORTS)


def candidate_blocks(job_id: str, rank: int, nnodes: int, attempt: int) -> list[int]:
    """Block starts for one node, in order. Ranks of one job never share a block."""
    region = port_region(ephemeral_range())
    count = (region[1] - region[0] + 1) // BLOCK_SIZE
    nnodes = max(nnodes, 1)
    usable = count - count % nnodes if count >= nnodes else count
    base = zlib.crc32(job_id.encode()) % usable
    first = (attempt - 1) % max(usable // nnodes, 1)
    indices = [(base + rank + (first + k) * nnodes) % usable for k in range(usable // nnodes)]
    starts = [region[0] + index * BLOCK_SIZE for index in dict.fromkeys(indices)]
    return [start for start in starts if block_is_clean(start)]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def choose_block(job_id: str, rank: int, nnodes: int, attempt: int) -> int:
    for start in candidate_blocks(job_id, rank, nnodes, attempt):
        if all(port_is_free(port) for port in range(start, start + BLOCK_SIZE)):
            return start
    raise RuntimeError("no block of free ports left for Ray on this node")


def ray_port_args(start: int, head: bool) -> tuple[list[str], dict[str, str]]:
    """``ray start`` flags and environment for one node's block."""
    flags: list[str] = []
    env: dict[str, str] = {}
    for offset, name in (HEAD_PORTS if head else ()) + NODE_PORTS:
        if name.startswith("--"):
            flags.append(f"{name}={start + offset}")
        else:
            env[name] = str(start + offset)
    flags.append(f"--min-worker-port={start + FIRST_WORKER_PORT}")
    flags.append(f"--max-worker-port={start + BLOCK_SIZE - 1}")
    return flags, env


def ray_temp_dir(job_id: str, rank: int) -> str:
    """Ray's session files for one node of one job: ``$TMPDIR/vec-inf-ray-<job>/<rank>``, short
    (Ray's socket paths must fit 107 bytes). Ray makes its temp dir world-writable; the parent,
    made here with mode 0700, keeps everyone else out."""
    parent = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"vec-inf-ray-{job_id}")
    os.makedirs(parent, mode=0o700, exist_ok=True)
    return os.path.join(parent, str(rank))


def remove_ray_temp_dir(path: str) -> None:
    """Remove one node's Ray files, and the job's parent once no node uses it."""
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(path))
