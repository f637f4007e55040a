"""Job-side launcher: runs the engine on a free port and reports where it listens.

Copied into each job directory and run by the job script with ``exec`` on the compute node, so
it must work with the standard library alone and any Python from 3.8 on (annotations are never
evaluated, hence the modern syntax is safe). Usage::

    launcher.py --job-dir DIR --stem STEM [--host-name NODE] -- ENGINE ARGV with {port}
    launcher.py --free-port        # print a free TCP port (the script's Ray head uses it)

Why a launcher instead of a few shell lines: the port is chosen as late as possible and a lost
race ("Address already in use") is retried on a new port; ``server_address`` lands in the job's
JSON atomically; cancellation signals reach the engine (no orphans); and the engine's exit code
is left behind in ``engine.exit`` for status to read after Slurm has forgotten the job.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from typing import Any

PORT_TOKEN = "{port}"
EXIT_MARKER = "engine.exit"
WATCH_MODULE = "jobwatch.py"  # copied next to this file; see load_watch
MAX_ATTEMPTS = 3
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_TAIL_BYTES = 64 * 1024
_PORT_IN_USE = ("address already in use", "errno 98")


def log(message: str) -> None:
    sys.stderr.write("[vec-inf-launcher] " + message + "\n")
    sys.stderr.flush()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def merge_json(path: str, updates: dict[str, object]) -> None:
    """Add keys to the job's JSON, keeping what the client wrote (readers never see half)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.update(updates)
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_since(path: str, offset: int) -> str:
    """What the engine appended to a log during this attempt (at most the last 64 KiB)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(offset, file_size(path) - _TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def port_was_taken(log_offsets: dict[str, int]) -> bool:
    text = "".join(read_since(path, offset) for path, offset in log_offsets.items()).lower()
    return any(marker in text for marker in _PORT_IN_USE)


class Supervisor:
    """Owns the engine child and relays the job's signals to it."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None

    def install(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGUSR1:
            self.received = signum
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(OSError):
                child.send_signal(signum)

    def run(self, argv: list[str]) -> int:
        self.child = subprocess.Popen(argv)
        while True:
            try:
                return self.child.wait()
            except InterruptedError:  # pragma: no cover - Python retries wait() itself
                continue


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launcher.py", description=__doc__.split("\n")[0])
    parser.add_argument("--free-port", action="store_true", help="print a free port and exit")
    parser.add_argument("--job-dir")
    parser.add_argument("--stem")
    parser.add_argument("--host-name", default=None)
    parser.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.free_port and (not args.job_dir or not args.stem or not args.command):
        parser.error("--job-dir, --stem and an engine command after '--' are required")
    return args


def default_host_name() -> str:
    """Inside ``srun`` (batch components) the step's own node name is the right host."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def exit_like(code: int) -> None:
    """Leave the way the engine left: killed by a signal shows up as that signal to Slurm."""
    if code < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP keep their default
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code if code >= 0 else 128 - code)


def load_watch(job_dir: str, supervisor: Supervisor) -> Any:
    """The job-side watch (lease, idleness, hung /health) from ``jobwatch.py`` next to this
    file; None when it is missing or the client asked for no watch."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), WATCH_MODULE)
    spec = importlib.util.spec_from_file_location("vec_inf_jobwatch", path)
    if spec is None or spec.loader is None or not os.path.exists(path):
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.start(job_dir, lambda: supervisor.child)


def launch(args: argparse.Namespace) -> int:
    job_dir = args.job_dir
    stem = args.stem
    host = args.host_name or default_host_name()
    json_path = os.path.join(job_dir, stem + ".json")
    logs = [os.path.join(job_dir, stem + ".err"), os.path.join(job_dir, stem + ".out")]
    supervisor = Supervisor()
    supervisor.install()
    watch = load_watch(job_dir, supervisor)
    code = 1
    for attempt in range(1, args.max_attempts + 1):
        if supervisor.received is not None:
            code = -supervisor.received
            break
        if watch is not None and watch.stopped.is_set():
            break
        port = free_port()
        argv = [str(port) if item == PORT_TOKEN else item for item in args.command]
        merge_json(
            json_path,
            {
                "server_address": f"http://{host}:{port}/v1",
                "port": port,
                "launcher_pid": os.getpid(),
                "launch_attempt": attempt,
            },
        )
        offsets = {path: file_size(path) for path in logs}
        if watch is not None:
            watch.serving_on(port)
        log(f"starting {argv[0]} on {host}:{port} (attempt {attempt})")
        try:
            code = supervisor.run(argv)
        except OSError as error:
            log(f"cannot start the engine {argv[0]!r}: {error}")
            code = 127
            break
        retry = (
            code != 0
            and supervisor.received is None
            and not (watch is not None and watch.stopped.is_set())
            and attempt < args.max_attempts
            and port_was_taken(offsets)
        )
        if not retry:
            break
        log(f"port {port} was taken before the engine bound it; retrying on a new port")
    atomic_write(os.path.join(job_dir, EXIT_MARKER), f"{code}\n")
    if watch is not None:
        watch.close()
        if watch.stopped.is_set():
            return 0  # stopped on purpose (stopped.json says why): the job ends cleanly
    return code


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.free_port:
        print(free_port())
        return
    exit_like(launch(args))


if __name__ == "__main__":
    main()
