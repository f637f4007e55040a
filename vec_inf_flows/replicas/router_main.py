"""The router job's program: ``vllm-router`` plus the loop that keeps its workers current.

``python -m vec_inf_flows.replicas.router_main --group-file G --port P [...]`` starts
``vllm-router`` with no workers (as a child process, with its own public command line), waits
until it answers, prints the ready line our status logic reads, then every ``--poll`` seconds
reconciles the router's workers with the group (``membership``). It ends when the group is
shut down, when told to (SIGTERM, forwarded to the router), or when the router itself dies.

Nothing secret passes through here: the router forwards each client's ``Authorization``
header to the replicas, which hold the key.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx

from vec_inf_flows.replicas.membership import MembershipTracker, observe_group
from vec_inf_flows.replicas.record import read_record
from vec_inf_flows.server.http import check_health_many
from vec_inf_flows.server.logscan import READY_LINE

_ROUTER_START_TIMEOUT = 60.0
_STOP_WAIT = 10.0


def say(message: str) -> None:
    sys.stderr.write(f"[vec-inf-router] {message}\n")
    sys.stderr.flush()


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def router_argv(args: argparse.Namespace) -> list[str]:
    """The ``vllm-router`` command: no workers yet, fast health checks, metrics on loopback."""
    return [
        sys.executable,
        "-m",
        "vllm_router.launch_router",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--policy",
        args.policy,
        # Its default metrics port is fixed (29000): two routers on one node would collide.
        "--prometheus-host",
        "127.0.0.1",
        "--prometheus-port",
        str(free_local_port()),
        "--health-check-interval-secs",
        str(args.health_check_interval),
        "--worker-startup-timeout-secs",
        "30",
        "--worker-startup-check-interval",
        "1",
        "--max-concurrent-requests",
        str(args.max_concurrent_requests),
        "--queue-size",
        str(args.queue_size),
        "--log-level",
        "warning",
    ]


class Router:
    """The ``vllm-router`` child and its admin API on loopback."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.process = subprocess.Popen(router_argv(args))
        self.admin = httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=40.0)

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            with contextlib.suppress(httpx.HTTPError):
                if self.admin.get("/liveness", timeout=2.0).status_code == 200:
                    return True
            time.sleep(0.2)
        return False

    def workers(self) -> list[str]:
        reply = self.admin.get("/list_workers", timeout=5.0)
        reply.raise_for_status()
        return [str(url) for url in reply.json().get("urls", [])]

    def add(self, url: str) -> bool:
        reply = self.admin.post("/add_worker", params={"url": url})
        return reply.is_success or "already exists" in reply.text

    def remove(self, url: str) -> bool:
        return self.admin.post("/remove_worker", params={"url": url}).is_success

    def stop(self) -> int:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(_STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.admin.close()
        return self.process.wait()


def reconcile(router: Router, tracker: MembershipTracker, group_file: str) -> bool:
    """One round; False once the group has ended (the router should stop)."""
    record = read_record(group_file)
    if record is None:
        return True  # being rewritten, or a passing I/O hiccup: try next round
    if record.ended_at is not None:
        say(f"group {record.group_id} ended ({record.ended_because or 'shut down'}): stopping")
        return False
    observations = observe_group(record)
    probes = check_health_many(tracker.to_probe(observations), timeout=2.0)
    healthy = {url: result.ok for url, result in probes.items()}
    changes = tracker.decide(observations, healthy, router.workers())
    names = {o.worker_url: o.job_id for o in observations}
    for url in changes.remove:
        if router.remove(url):
            say(f"removed worker {url} ({_whose(names, url)})")
    for url in changes.add:
        if router.add(url):
            say(f"added worker {url} (job {names[url]})")
    return True


def _whose(names: dict[str | None, str], url: str) -> str:
    return f"job {names[url]}" if url in names else "not launched by this group"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="router_main", description=__doc__.split("\n")[0])
    parser.add_argument("--group-file", required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--policy", default="round_robin")
    parser.add_argument("--health-check-interval", type=int, default=5)
    parser.add_argument("--max-concurrent-requests", type=int, default=4096)
    parser.add_argument("--queue-size", type=int, default=1024)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between rounds")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("vllm_router") is None:
        raise RuntimeError(
            f"vllm-router is not installed for {sys.executable}: "
            "pip install 'vec-inf-flows[router]'"
        )
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    router = Router(args)
    try:
        if not router.wait_listening(_ROUTER_START_TIMEOUT):
            say("vllm-router did not start listening")
            return router.stop() or 1
        say(f"vllm-router listening on {args.host}:{args.port} ({args.policy})")
        print(READY_LINE, file=sys.stderr, flush=True)
        tracker = MembershipTracker()
        while not stopping and router.alive():
            try:
                if not reconcile(router, tracker, args.group_file):
                    break
            except httpx.HTTPError as error:
                say(f"router admin call failed ({error}); retrying next round")
            time.sleep(args.poll)
        if not router.alive():
            say(f"vllm-router exited with code {router.process.returncode}")
            return router.process.returncode or 1
        return 0
    finally:
        router.stop()


if __name__ == "__main__":
    sys.exit(main())
