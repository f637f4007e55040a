"""What a job's directory says about how its server is being watched, stopped or shut down.

Written at launch by the client (``watch.json`` through ``lifecycle.watch``, the first
``lease.json``), while it runs by
the job-side watch (``stopped.json``, ``unresponsive.json``) and by ``shutdown`` (the shutdown
marker); read by status, shutdown and the reaper.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vec_inf_flows import jobdir

DEFAULT_HEALTH_GRACE = 60.0
# The files of the protocol with the job-side watch, as ``scripts/jobwatch.py`` names them (it
# runs on the node with the standard library alone, so it cannot import these; a test checks
# both agree). Not imported from there: ``status`` reads them and must not load the job side.
WATCH_FILE = "watch.json"
LEASE_FILE = "lease.json"
STOPPED_FILE = "stopped.json"
UNRESPONSIVE_FILE = "unresponsive.json"


class LeaseState(StrEnum):
    NONE = "none"  # launched without a lease
    HELD = "held"  # a lease the job side enforces (renewed or not, the job will tell)
    RELEASED = "released"  # the owner handed the server over to its time limit
    LAPSED = "lapsed"  # the job side recorded that the owner stopped renewing


@dataclass(frozen=True)
class ShutdownRecord:
    """The shutdown marker: asked when, confirmed once the cancel succeeded, and the failure
    the server had already suffered (a FAILED server stays FAILED with its reason)."""

    requested_at: float
    confirmed: bool
    failed_reason: str | None = None


def shutdown_marker(directory: Path) -> Path:
    return jobdir.JobPaths(directory, directory.name).shutdown_marker


def write_shutdown(directory: Path, record: ShutdownRecord) -> None:
    payload = {
        "requested_at": record.requested_at,
        "confirmed": record.confirmed,
        "failed_reason": record.failed_reason,
    }
    jobdir.write_json(shutdown_marker(directory), payload)


def restore_shutdown(directory: Path, previous: ShutdownRecord | None) -> None:
    """Put back what the marker said before a shutdown whose cancel failed."""
    if previous is None:
        shutdown_marker(directory).unlink(missing_ok=True)
    else:
        write_shutdown(directory, previous)


def read_shutdown(directory: Path) -> ShutdownRecord | None:
    try:
        text = shutdown_marker(directory).read_text()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        reason = data.get("failed_reason")
        return ShutdownRecord(
            requested_at=float(data.get("requested_at") or 0.0),
            confirmed=bool(data.get("confirmed")),
            failed_reason=str(reason) if reason else None,
        )
    # Markers of earlier versions hold only a time stamp, written as the cancel was sent.
    stamp = data if isinstance(data, int | float) else time.time()
    return ShutdownRecord(requested_at=float(stamp), confirmed=True)


@dataclass(frozen=True)
class StopRecord:
    """The job-side watch stopped the engine on purpose."""

    cause: str  # "lease" or "idle"
    reason: str  # e.g. "owner stopped renewing at 2025-05-01 12:00:00 UTC (lease of 300 s ...)"


@dataclass(frozen=True)
class JobEvidence:
    """Everything the job dir says beyond the logs and ``engine.exit``."""

    shutdown: ShutdownRecord | None = None
    stopped: StopRecord | None = None
    unresponsive: str | None = None  # "not answering /health since ... (grace 60 s)"

    @property
    def shutdown_confirmed(self) -> bool:
        return self.shutdown is not None and self.shutdown.confirmed


def read_evidence(directory: Path | None) -> JobEvidence:
    if directory is None:
        return JobEvidence()
    stopped = jobdir.read_json(directory / STOPPED_FILE)
    unresponsive = jobdir.read_json(directory / UNRESPONSIVE_FILE)
    return JobEvidence(
        shutdown=read_shutdown(directory),
        stopped=(
            StopRecord(str(stopped.get("cause", "")), str(stopped.get("reason", "stopped")))
            if stopped is not None
            else None
        ),
        unresponsive=(
            f"not answering /health since {unresponsive.get('since', '?')} "
            f"(grace {float(unresponsive.get('grace') or 0):g} s)"
            if unresponsive is not None
            else None
        ),
    )


def lease_state(directory: Path | None) -> LeaseState:
    """The lease as the job dir tells it: the job side decides lapses, so no clock is read."""
    if directory is None:
        return LeaseState.NONE
    stopped = jobdir.read_json(directory / STOPPED_FILE)
    if stopped is not None and stopped.get("cause") == "lease":
        return LeaseState.LAPSED
    lease = jobdir.read_json(directory / LEASE_FILE)
    if lease is None:
        return LeaseState.NONE
    return LeaseState.RELEASED if lease.get("released") is True else LeaseState.HELD
