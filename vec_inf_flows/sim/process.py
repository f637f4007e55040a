"""Start the simulator as a real subprocess and know when it is ready (for tests and benchmarks).

Readiness is decided the way vec-inf and our status logic decide it: the uvicorn ready line on
stderr. Output goes to files, never pipes, so a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from vec_inf_flows.errors import ServerError

READY_LINE = "INFO:     Application startup complete."
_URL_LINE = re.compile(r"Starting vLLM server on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")
_POLL_SECONDS = 0.02


class SimServer:
    """``with SimServer(["/models/m", "--served-model-name", "m"]) as sim: httpx.get(sim.url)``.

    Adds ``--host 127.0.0.1 --port 0`` and ``--sim-startup-delay 0`` unless the arguments (or
    ``VEC_INF_SIM_STARTUP_DELAY``) say otherwise. Logs go to ``log_dir`` (a temporary directory,
    removed on exit, by default).
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        log_dir: str | os.PathLike[str] | None = None,
        wait_ready: bool = True,
    ) -> None:
        self.args = self._with_defaults(list(args), env or {})
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.startup_timeout = startup_timeout
        self.wait_ready = wait_ready
        self._own_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="vec-inf-sim-"))
        self.stdout_path = self.log_dir / "sim.out"
        self.stderr_path = self.log_dir / "sim.err"
        self._process: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None

    @staticmethod
    def _with_defaults(args: list[str], env: Mapping[str, str]) -> list[str]:
        def given(flag: str) -> bool:
            return any(a == flag or a.startswith(flag + "=") for a in args)

        extra: list[str] = []
        if not given("--host"):
            extra += ["--host", "127.0.0.1"]
        if not given("--port"):
            extra += ["--port", "0"]
        delay_env = "VEC_INF_SIM_STARTUP_DELAY"
        if (
            not given("--sim-startup-delay")
            and delay_env not in env
            and delay_env not in os.environ
        ):
            extra += ["--sim-startup-delay", "0"]
        return args + extra

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimServer:
        """Start the process once; a second start (``with sim.start():``) would launch a twin
        that nothing stops and that fights the first for its port, so it is refused."""
        if self._process is not None:
            raise ServerError("Simulator already started; use `with sim:` or `sim.start()`.")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "vec_inf_flows.sim", "serve", *self.args]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env
            )
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        """Block until the ready line; raise :class:`ServerError` if the process dies or stalls."""
        deadline = time.monotonic() + self.startup_timeout
        while READY_LINE not in self.stderr_text:
            if self.process.poll() is not None:
                tail = "\n".join(self.stderr_lines[-5:])
                raise ServerError(
                    f"Simulator exited with code {self.process.returncode} before it was ready: "
                    f"{tail}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"Simulator not ready within {self.startup_timeout} s.")
            time.sleep(_POLL_SECONDS)
        match = _URL_LINE.search(self.stdout_text)
        if match is None:
            raise ServerError("Simulator is ready but never logged its address.")
        host = match.group(1)
        self.host = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        self.port = int(match.group(2))

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, as Slurm sends it, then wait; SIGKILL if it overstays. Returns the exit code."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def kill(self) -> int:
        process = self.process
        if process.poll() is None:
            process.kill()
        return process.wait()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self.stop()
        if self._own_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- addresses and logs ------------------------------------------------------------------
    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError("Simulator was not started.")
        return self._process

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerError("Simulator is not ready; it has no address yet.")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout_text.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr_text.splitlines()
