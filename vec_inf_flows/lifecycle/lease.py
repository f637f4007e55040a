"""Leases: an owner proves it is alive by rewriting a file in each of its jobs' directories.

The job-side watch (``scripts/jobwatch.py``) stops the engine when the file has not changed for
``lapse_after`` seconds of the node's own clock, so a server ends when its owner is gone even if
nothing else is left to end it. Only the content matters, never a time stamp compared across
machines, and the job directory is on the shared file system the logs already use: leases work
across nodes. ``LeaseKeeper`` renews the leases of any number of jobs from one daemon thread, in
any process (a CLI, a script using the Python API, a Prefect flow run).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vec_inf_flows import jobdir
from vec_inf_flows.lifecycle.evidence import LEASE_FILE

log = logging.getLogger("vec_inf_flows.lease")

DEFAULT_RENEW_EVERY = 60.0
DEFAULT_LAPSE_AFTER = 300.0


class LeasePolicy(BaseModel):
    """How often the owner renews, and how long the job waits for a renewal before it stops."""

    model_config = ConfigDict(frozen=True)

    renew_every: float = Field(
        default=DEFAULT_RENEW_EVERY, gt=0, description="seconds between renewals"
    )
    lapse_after: float = Field(
        default=DEFAULT_LAPSE_AFTER,
        gt=0,
        description="seconds without a renewal before the job stops",
    )

    @model_validator(mode="after")
    def _room_for_a_missed_renewal(self) -> LeasePolicy:
        if self.lapse_after < 2 * self.renew_every:
            raise ValueError(
                f"lapse_after ({self.lapse_after:g} s) must be at least twice renew_every "
                f"({self.renew_every:g} s), so one slow renewal does not end the server"
            )
        return self


def lease_path(job_dir: str | Path) -> Path:
    return Path(job_dir) / LEASE_FILE


def write_lease(job_dir: str | Path, counter: int, policy: LeasePolicy, keeper: str = "") -> None:
    """One renewal. ``renewed_at`` is the owner's clock, shown to people, never compared;
    ``keeper`` tells two keepers' renewals apart even when their counters meet."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    payload = {
        "keeper": keeper,
        "counter": counter,
        "renewed_at": stamp,
        "renew_every": policy.renew_every,
        "lapse_after": policy.lapse_after,
    }
    jobdir.write_json(lease_path(job_dir), payload)


def release_lease(job_dir: str | Path) -> None:
    """Hand the server over to its time limit: the watch stops enforcing the lease."""
    jobdir.write_json(lease_path(job_dir), {"released": True, "released_at": time.time()})


class LeaseKeeper:
    """Renews the leases of a set of jobs from one daemon thread.

    ``hold(job_dir, policy)`` writes the first renewal at once and renews every
    ``policy.renew_every`` seconds until ``release`` (the server then lives to its time limit),
    ``drop`` (stop renewing: the lease lapses and the job stops) or ``close``. When the process
    dies the thread dies with it, which is the point: the leases then lapse.

    Example::

        with LeaseKeeper() as keeper:
            keeper.hold(launched.job_dir, LeasePolicy(renew_every=60, lapse_after=300))
            ...  # use the server; if this process is killed, the server stops by itself
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Path, tuple[LeasePolicy, int, float]] = {}  # policy, counter, due
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._token = secrets.token_hex(4)

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def held(self) -> list[Path]:
        with self._lock:
            return list(self._held)

    def hold(self, job_dir: str | Path, policy: LeasePolicy | None = None) -> None:
        policy = policy or LeasePolicy()
        directory = Path(job_dir)
        with self._lock:
            write_lease(directory, 1, policy, self._token)
            self._held[directory] = (policy, 1, time.monotonic() + policy.renew_every)
            self._ensure_thread()
        self._wake.set()

    def release(self, job_dir: str | Path) -> None:
        """Stop renewing and tell the job its lease no longer applies."""
        directory = Path(job_dir)
        with self._lock:  # writes happen under the lock: a late renewal cannot undo this
            self._held.pop(directory, None)
            release_lease(directory)

    def drop(self, job_dir: str | Path) -> None:
        """Stop renewing (the job was shut down, or should stop once the lease lapses)."""
        with self._lock:
            self._held.pop(Path(job_dir), None)

    def close(self) -> None:
        """Stop renewing everything; leases still held will lapse."""
        with self._lock:
            self._held.clear()
            self._closed = True
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                due = [d for d, (_, _, when) in self._held.items() if when <= now]
                next_due = min((when for _, _, when in self._held.values()), default=now + 60)
            for directory in due:
                self._renew(directory)
            self._wake.wait(max(0.05, min(next_due, time.monotonic() + 60) - time.monotonic()))
            self._wake.clear()

    def _renew(self, directory: Path) -> None:
        with self._lock:
            held = self._held.get(directory)
            if held is None:
                return
            policy, counter, _ = held
            self._held[directory] = (policy, counter + 1, time.monotonic() + policy.renew_every)
            try:
                write_lease(directory, counter + 1, policy, self._token)
            except OSError as error:  # a file-system hiccup: the next renewal may well succeed
                log.warning("could not renew the lease in %s: %s", directory, error)
