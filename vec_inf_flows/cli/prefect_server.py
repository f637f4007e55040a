"""Prefect's temporary API server for an in-process run, as a child that cannot outlive the run.

With no API configured, Prefect starts a temporary server (uvicorn) itself and stops it from an
``atexit`` hook: a SIGTERM or SIGKILL of the CLI skips that hook and leaves the server running,
and a terminal's Ctrl-C reaches it too (same process group), so the run's last states are never
reported. ``run`` starts the same server (Prefect's app, Prefect's settings) this way instead:

- in its own session, so a Ctrl-C meant for the run does not kill the API the run's teardown
  reports to;
- reading a pipe whose only writer is the CLI: however the CLI ends, even by SIGKILL, the kernel
  closes its end, the server reads end-of-file and shuts down.

``python -m vec_inf_flows.cli.prefect_server PORT`` is the child's side.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from vec_inf_flows.errors import VecInfError

STARTUP_FLOOR = 60.0  # Prefect's default of 20 s is too short on a busy login node
SHUTDOWN_GRACE = 10.0


@contextmanager
def api_for_run(console: Any) -> Iterator[None]:
    """Use the configured Prefect API; without one, a temporary server tied to this process."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:  # a server, or none allowed
        yield
        return
    console.print(
        "[dim]No Prefect server configured (PREFECT_API_URL): starting a temporary one for this "
        "run (10-20 s); it stops when this command ends, however it ends.[/]",
        highlight=False,
    )
    with temporary_settings({PREFECT_API_URL: start_temporary_server()}):
        yield


def start_temporary_server() -> str:
    """Start the server for the rest of this process's life; return its API URL.

    It is not stopped when the run returns: Prefect sends its last logs and events from exit
    hooks, and those need the API. It stops when this process is gone and the pipe with it.
    """
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    timeout = max(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()), STARTUP_FLOOR)
    reader, writer = os.pipe()  # the writer stays in this process only (not inheritable)
    try:
        process, api_url = _start(reader, timeout)
    except BaseException:
        os.close(writer)
        raise
    finally:
        os.close(reader)
    _LIVE.append((process, writer))
    return api_url


_LIVE: list[tuple[subprocess.Popen[bytes], int]] = []  # open until this process ends


def _start(reader: int, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    from prefect.settings import get_current_settings

    env = {
        # A server for one run sends no telemetry (on a node without internet it logs an error);
        # a user's own setting wins.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **os.environ,
        # What Prefect's own temporary server gets: no UI, the ephemeral set of services.
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    deadline = time.monotonic() + timeout
    while True:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "vec_inf_flows.cli.prefect_server", str(port)],
            stdin=reader,
            env=env,
            start_new_session=True,
        )
        api_url = f"http://127.0.0.1:{port}/api"
        if _wait_healthy(process, api_url, deadline):
            return process, api_url
        if process.poll() is None:  # still starting at the deadline
            process.kill()
            process.wait()
            raise VecInfError(f"Prefect's temporary server did not start within {timeout:.0f} s.")
        if time.monotonic() > deadline:  # it exited: another process took the port, or worse
            raise VecInfError(
                f"Prefect's temporary server exited with code {process.returncode} at start."
            )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(process: subprocess.Popen[bytes], api_url: str, deadline: float) -> bool:
    with httpx.Client(timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get(f"{api_url}/health").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return False


# --- the child's side -----------------------------------------------------------------------------


def _shut_down_when_parent_ends() -> None:
    """Read stdin (the parent's pipe) until end-of-file, then stop the server."""
    while os.read(sys.stdin.fileno(), 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
    time.sleep(SHUTDOWN_GRACE)
    os._exit(1)


def main(argv: list[str]) -> None:
    import uvicorn

    threading.Thread(target=_shut_down_when_parent_ends, daemon=True).start()
    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(argv[0]),
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
