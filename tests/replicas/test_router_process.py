"""The router job's program against real servers: vllm-router follows the group record.

No Slurm here: the program runs as a local process on a group record whose replica job
directories point at real simulator servers, which is exactly what it reads inside a job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from vec_inf_flows import jobdir
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.replicas import GroupRecord, Member
from vec_inf_flows.server.logscan import READY_LINE
from vec_inf_flows.sim.process import SimServer

KEY = "sk-replica-key-0451"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


class Group:
    """A group record on disk whose members are simulator servers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.record = GroupRecord(
            group_id="group-0123abcd", model_name="m", replicas=0, directory=str(root / "g")
        )
        self.record.save()

    def add(self, job_id: str, sim: SimServer) -> JobPaths:
        directory = self.root / "jobs" / f"m.{job_id}"
        paths = JobPaths(directory, directory.name)
        directory.mkdir(parents=True)
        jobdir.write_json(paths.json, {"server_address": sim.base_url})
        self.record.members.append(Member(job_id=job_id, job_dir=str(directory)))
        self.record.replicas += 1
        self.record.save()
        return paths


@pytest.fixture
def router(tmp_path: Path) -> Iterator[tuple[Group, httpx.Client, subprocess.Popen[bytes]]]:
    group = Group(tmp_path)
    port = free_port()
    err = (tmp_path / "router.err").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "vec_inf_flows.replicas.router_main", "--port", str(port)),
            *("--group-file", str(group.record.path), "--host", "127.0.0.1", "--poll", "0.3"),
        ],
        stdout=err,
        stderr=err,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        until(lambda: READY_LINE in (tmp_path / "router.err").read_text(), 30)
        yield group, client, process
    finally:
        client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        err.close()


def workers(client: httpx.Client) -> list[str]:
    return sorted(client.get("/list_workers").json()["urls"])


def test_the_router_follows_the_group(
    router: tuple[Group, httpx.Client, subprocess.Popen[bytes]],
) -> None:
    group, client, process = router
    args = ["m", "--served-model-name", "m", "--sim-startup-delay", "0"]
    with ExitStack() as stack:
        a, b, c = (stack.enter_context(SimServer(args)) for _ in range(3))
        assert client.get("/readiness").status_code == 503  # no replica yet
        group.add("1", a)
        until(lambda: workers(client) == [a.url])
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        b_paths = group.add("2", b)
        group.add("3", c)
        until(lambda: workers(client) == sorted([a.url, b.url, c.url]))

        # Someone else adds a server of theirs: it is gone within a round.
        client.post("/add_worker", params={"url": c.url.replace("127.0.0.1", "localhost")})
        until(lambda: workers(client) == sorted([a.url, b.url, c.url]))
        # A dead engine (SIGKILL) leaves after its failed probes; an ended one at once.
        a.kill()
        until(lambda: workers(client) == sorted([b.url, c.url]), 15)
        jobdir.atomic_write(b_paths.exit_marker, "0\n")
        until(lambda: workers(client) == [c.url], 5)
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200

        # Shutting the group down stops the router and its vllm-router child.
        group.record.ended_at = time.time()
        group.record.save()
        assert process.wait(timeout=20) == 0
    with pytest.raises(httpx.ConnectError):
        client.get("/liveness")


def test_a_key_on_the_replicas_is_required_through_the_router(
    router: tuple[Group, httpx.Client, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    group, client, _ = router
    args = ["m", "--served-model-name", "m", "--sim-startup-delay", "0"]
    with SimServer(args, env={"VLLM_API_KEY": KEY}) as sim:
        group.add("1", sim)
        until(lambda: workers(client) == [sim.url])
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.post("/v1/chat/completions", json=CHAT, headers=wrong).status_code == 401
        good = {"Authorization": f"Bearer {KEY}"}
        answer = client.post("/v1/chat/completions", json=CHAT, headers=good)
        assert answer.status_code == 200 and answer.json()["choices"]
        assert client.get("/v1/models").status_code == 401
        # No process shows the key in its command line (ps), the servers' included.
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                assert KEY not in cmdline.read_bytes().decode(errors="replace"), cmdline
            except OSError:
                continue
    # The router never saw the key: not in its logs or the group files.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    assert json.loads(group.record.path.read_text())["group_id"] == "group-0123abcd"
