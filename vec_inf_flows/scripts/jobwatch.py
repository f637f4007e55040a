"""Job-side watch over the engine: the owner's lease, idleness and a hung /health.

Copied next to ``launcher.py`` into each job directory and loaded by it, so like the launcher it
uses the standard library alone and runs on any Python from 3.8 on. It does nothing unless the
client wrote ``watch.json`` into the job directory before the job was released.

Why on the job side: a server must end when its owner is gone even when nothing else is left
to end it (the owner was SIGKILLed, its machine was lost, no reaper runs). The owner proves it
is alive by rewriting ``lease.json`` in the job directory, on the shared file system the logs
already need. Clocks of different machines are never compared: the watch notices that the
file's *content* changed, timed on this node's monotonic clock, so a skewed owner clock cannot
end a server early or keep it alive.

Files (one writer each; readers never see half a file):

* ``watch.json``    client, at launch: ``{"lease": {"lapse_after": s, "renew_every": s} | null,
  "idle_timeout": s | null, "health_grace": s, "poll": s}``
* ``lease.json``    owner, every ``renew_every`` s: ``{"counter": n, "renewed_at": "..."}``;
  ``{"released": true}`` hands the server over to its time limit.
* ``stopped.json``  this watch, when it stops the engine on purpose:
  ``{"cause": "lease" | "idle", "reason": "...", "at": "..."}``
* ``unresponsive.json``  this watch, while a server that was READY has not answered /health
  for ``health_grace`` s (removed if it answers again): ``{"since": "...", "grace": s}``
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

WATCH_FILE = "watch.json"
LEASE_FILE = "lease.json"
STOPPED_FILE = "stopped.json"
UNRESPONSIVE_FILE = "unresponsive.json"

DEFAULT_POLL = 5.0  # seconds between checks of the lease and /health
STOP_GRACE = 30.0  # seconds between SIGTERM and SIGKILL when the engine is stopped on purpose
_PROBE_TIMEOUT = 3.0
# vLLM's own counters and gauges (the simulator exports the same names): any change, or any
# request running or waiting, is activity.
_ACTIVITY_COUNTERS = (
    "vllm:request_success_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)
_BUSY_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


def log(message: str) -> None:
    import sys

    sys.stderr.write("[vec-inf-watch] " + message + "\n")
    sys.stderr.flush()


def wall_clock() -> str:
    """This node's time, for people to read; never used to decide anything."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())


def write_json(path: str, payload: dict[str, object]) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(payload) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def read_json(path: str) -> dict[str, object] | None:
    raw = read_bytes(path)
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def http_get(url: str, timeout: float = _PROBE_TIMEOUT) -> bytes | None:
    """The body of a 200 answer, else None (refused, timed out, any other status)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.read() if response.status == 200 else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def activity_signature(text: str) -> tuple[float, ...] | None:
    """Totals of the activity counters and busy gauges from a Prometheus text exposition."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in _ACTIVITY_COUNTERS or name in _BUSY_GAUGES:
            try:
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    if not totals:
        return None
    return tuple(totals.get(name, 0.0) for name in _ACTIVITY_COUNTERS + _BUSY_GAUGES)


def is_busy(signature: tuple[float, ...]) -> bool:
    return any(value > 0 for value in signature[len(_ACTIVITY_COUNTERS) :])


class Watch:
    """A daemon thread; ``engine`` returns the current engine process (None between tries)."""

    def __init__(
        self,
        job_dir: str,
        config: dict[str, object],
        engine: Callable[[], subprocess.Popen[bytes] | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_dir = job_dir
        self.engine = engine
        self.clock = clock
        lease = config.get("lease")
        self.lapse_after = _number(lease.get("lapse_after")) if isinstance(lease, dict) else None
        self.idle_timeout = _number(config.get("idle_timeout"))
        self.health_grace = _number(config.get("health_grace"))
        self.poll = _number(config.get("poll")) or DEFAULT_POLL
        limits = [v for v in (self.lapse_after, self.health_grace, self.idle_timeout) if v]
        self.tick = max(0.2, min([self.poll] + [v / 4 for v in limits]))
        self.port: int | None = None
        self.stopped = threading.Event()  # set once the engine was stopped on purpose
        self._done = threading.Event()
        now = clock()
        self._lease_seen = read_bytes(self.path(LEASE_FILE))
        self._lease_changed = now
        self._last_renewal = self._renewed_at(self._lease_seen)
        if self._lease_seen is not None and self._released(self._lease_seen):
            self.lapse_after = None  # released while the job was still queued
        self._ever_healthy = False
        self._last_healthy = now
        self._unresponsive = False
        self._activity: tuple[float, ...] | None = None
        self._last_active = now
        self._next_scrape = now
        self._terminated: subprocess.Popen[bytes] | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.job_dir, name)

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> Watch:
        thread = threading.Thread(target=self._run, name="vec-inf-watch", daemon=True)
        thread.start()
        return self

    def close(self) -> None:
        self._done.set()

    def serving_on(self, port: int) -> None:
        """The launcher started an engine on ``port``; health is judged afresh."""
        self.port = port
        self._ever_healthy = False
        self._last_healthy = self._last_active = self.clock()

    def _run(self) -> None:
        while not self._done.wait(self.tick):
            try:
                if self.stopped.is_set():
                    self._terminate()  # an engine started after the stop goes too
                else:
                    self.check()
            except Exception as error:  # the watch must never take the launcher down
                log(f"check failed: {error!r}")

    def check(self) -> None:
        """One round: the lease first (it needs no engine), then /health, then idleness."""
        now = self.clock()
        if self.lapse_after is not None:
            self._check_lease(now)
        if self.stopped.is_set() or self.port is None:
            return
        healthy = self._check_health(now)
        if healthy and self.idle_timeout is not None and now >= self._next_scrape:
            self._check_idle(now)

    # -- lease ------------------------------------------------------------------------------

    @staticmethod
    def _renewed_at(raw: bytes | None) -> str | None:
        with contextlib.suppress(ValueError, AttributeError):
            value = json.loads((raw or b"").decode("utf-8"))
            if isinstance(value, dict) and value.get("renewed_at"):
                return str(value["renewed_at"])
        return None

    @staticmethod
    def _released(raw: bytes) -> bool:
        with contextlib.suppress(ValueError):
            value = json.loads(raw.decode("utf-8"))
            return isinstance(value, dict) and value.get("released") is True
        return False

    def _check_lease(self, now: float) -> None:
        raw = read_bytes(self.path(LEASE_FILE))
        if raw is not None and raw != self._lease_seen:
            self._lease_seen, self._lease_changed = raw, now
            self._last_renewal = self._renewed_at(raw) or self._last_renewal
            if self._released(raw):
                log("the owner released its lease: the server now lives to its time limit")
                self.lapse_after = None
            return
        if now - self._lease_changed < (self.lapse_after or 0):
            return
        since = self._last_renewal or "launch"
        reason = (
            f"owner stopped renewing at {since} "
            f"(lease of {self.lapse_after:g} s lapsed; noticed at {wall_clock()})"
        )
        self.stop("lease", reason)

    # -- health -----------------------------------------------------------------------------

    def _check_health(self, now: float) -> bool:
        healthy = http_get(f"http://127.0.0.1:{self.port}/health") is not None
        if healthy:
            self._ever_healthy, self._last_healthy = True, now
            if self._unresponsive:
                log("the server answers /health again")
                with contextlib.suppress(OSError):
                    os.unlink(self.path(UNRESPONSIVE_FILE))
                self._unresponsive = False
            return True
        grace = self.health_grace
        silent_for = now - self._last_healthy
        if self._ever_healthy and grace and not self._unresponsive and silent_for >= grace:
            since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() - silent_for))
            write_json(self.path(UNRESPONSIVE_FILE), {"since": since, "grace": grace})
            self._unresponsive = True
            log(f"the server has not answered /health since {since} (grace {grace:g} s)")
        return False

    # -- idleness ---------------------------------------------------------------------------

    def _check_idle(self, now: float) -> None:
        timeout = self.idle_timeout or 0.0
        self._next_scrape = now + min(30.0, max(self.tick, timeout / 10))
        body = http_get(f"http://127.0.0.1:{self.port}/metrics")
        signature = activity_signature(body.decode("utf-8", "replace")) if body else None
        if signature is None:
            return  # no counters to read: never call a server idle on no evidence
        if signature != self._activity or is_busy(signature):
            self._activity, self._last_active = signature, now
            return
        if now - self._last_active >= timeout:
            minutes = timeout / 60
            self.stop("idle", f"idle for {minutes:g} min (no requests; stopped at {wall_clock()})")

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, cause: str, reason: str) -> None:
        """Record why, then stop the engine (the launcher then ends the job cleanly)."""
        write_json(self.path(STOPPED_FILE), {"cause": cause, "reason": reason, "at": wall_clock()})
        self.stopped.set()
        log(f"stopping the engine: {reason}")
        self._terminate()

    def _terminate(self) -> None:
        """SIGTERM the running engine, SIGKILL it if it is still there after ``STOP_GRACE``."""
        child = self.engine()
        if child is None or child.returncode is not None or child is self._terminated:
            return
        self._terminated = child
        with contextlib.suppress(OSError):
            child.send_signal(signal.SIGTERM)
        deadline = self.clock() + STOP_GRACE
        while child.returncode is None and self.clock() < deadline:
            time.sleep(0.2)
        if child.returncode is None:
            log(f"the engine ignored SIGTERM for {STOP_GRACE:g} s; killing it")
            with contextlib.suppress(OSError):
                child.kill()


def start(job_dir: str, engine: Callable[[], subprocess.Popen[bytes] | None]) -> Watch | None:
    """Start watching if the client asked for it (``watch.json``); None otherwise."""
    config = read_json(os.path.join(job_dir, WATCH_FILE))
    if config is None:
        return None
    return Watch(job_dir, config, engine).start()
