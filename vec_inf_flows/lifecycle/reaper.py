"""The reaper's decision: cancel only what is provably abandoned.

Pure, so every rule is a row in a test table; the Prefect layer looks the owner's flow run up on
its own server and passes the answer in. The rules, and why:

* A lapsed lease is proof: the owner stopped renewing for longer than it promised it would.
* An owner flow run that is final on the *same* Prefect server is proof too, unless the owner
  released the lease: it handed the server over to its time limit on purpose.
* Anything the reaper cannot see is reported, never cancelled: a run on another Prefect server
  (or on a CLI's temporary one, which another process cannot reach) is alive as far as we know,
  and "not found" on our server means "not ours to judge", not "ended".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from vec_inf_flows.lifecycle.evidence import LeaseState
from vec_inf_flows.lifecycle.owner import OwnerRecord


class RunLookup(StrEnum):
    """What the caller's Prefect server said about the owner's flow run."""

    FINAL = "final"  # completed, failed, crashed, cancelled
    ACTIVE = "active"  # scheduled, pending, running, paused ...
    NOT_FOUND = "not_found"
    ERROR = "error"  # the look-up itself failed
    NOT_ASKED = "not_asked"  # the caller did not look (e.g. another server's run)


@dataclass(frozen=True)
class OwnerRun:
    lookup: RunLookup
    state_name: str = ""  # e.g. "Crashed", for the report


class ReapAction(StrEnum):
    CANCEL = "cancel"
    KEEP = "keep"
    REPORT = "report"  # cannot tell: say so, cancel nothing


@dataclass(frozen=True)
class ReapDecision:
    action: ReapAction
    reason: str


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def _normalised(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"))


def same_prefect_server(
    owner_url: str | None, owner_host: str, caller_url: str | None, caller_host: str | None
) -> bool:
    """Same API URL; for a loopback URL also the same machine (each has its own localhost)."""
    if not owner_url or not caller_url or _normalised(owner_url) != _normalised(caller_url):
        return False
    if (urlsplit(owner_url.strip()).hostname or "") in _LOOPBACK:
        return caller_host is not None and caller_host == owner_host
    return True


def decide_reap(
    owner: OwnerRecord | None,
    lease: LeaseState,
    caller_api_url: str | None,
    owner_run: OwnerRun,
    *,
    caller_host: str | None = None,
) -> ReapDecision:
    """What the reaper does with one live job (see the module docstring)."""
    if lease is LeaseState.LAPSED:
        return ReapDecision(ReapAction.CANCEL, "its owner stopped renewing the lease")
    if lease is LeaseState.RELEASED:
        return ReapDecision(
            ReapAction.KEEP, "its owner handed it over to its time limit (lease released)"
        )
    if owner is None or not owner.flow_run_id:
        why = " (the job side enforces its lease)" if lease is LeaseState.HELD else ""
        return ReapDecision(ReapAction.KEEP, f"not launched by a flow run{why}")
    run = owner.flow_run_id
    if not same_prefect_server(owner.prefect_api_url, owner.host, caller_api_url, caller_host):
        where = owner.prefect_api_url or "an unknown Prefect server"
        return ReapDecision(
            ReapAction.REPORT,
            f"owner flow run {run} is on another Prefect server ({where}); cannot see it",
        )
    state = f" ({owner_run.state_name})" if owner_run.state_name else ""
    if owner_run.lookup is RunLookup.FINAL:
        return ReapDecision(ReapAction.CANCEL, f"owner flow run {run} has ended{state}")
    if owner_run.lookup is RunLookup.ACTIVE:
        return ReapDecision(ReapAction.KEEP, f"owner flow run {run} is still active{state}")
    if owner_run.lookup is RunLookup.NOT_FOUND:
        return ReapDecision(
            ReapAction.REPORT, f"owner flow run {run} is not known to this Prefect server"
        )
    return ReapDecision(
        ReapAction.REPORT, f"owner flow run {run} could not be looked up{state}; cancelled nothing"
    )
