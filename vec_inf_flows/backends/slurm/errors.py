"""What a failed Slurm command means: retry, give up, or "that job is gone".

Matching is on Slurm's own message texts, which have been stable across releases; an error we
do not recognise is treated as permanent, because retrying blindly hides real problems.
"""

from __future__ import annotations

import re
from enum import StrEnum

from vec_inf_flows.backends.slurm.runner import CommandResult
from vec_inf_flows.errors import SlurmError, SlurmPermanentError, SlurmTransientError


class Outcome(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"  # the controller or database did not answer: retry later
    PERMANENT = "permanent"  # Slurm refused the request: retrying cannot help
    ABSENT = "absent"  # the job id is unknown (purged after MinJobAge, or never existed)
    ACCOUNTING_OFF = "accounting_off"  # no slurmdbd: sacct can never answer


_ABSENT = ("Invalid job id specified",)
_ACCOUNTING_OFF = ("accounting storage is disabled",)
_TRANSIENT = (
    "Socket timed out on send/recv operation",
    "Socket timed out",
    "Unable to contact slurm controller",
    "Connection refused",
    "Connection reset by peer",
    "Zero Bytes were transmitted or received",
    "Problem talking to the database",
    "slurm_persist_conn_open",
    "Unable to process configuration file",
    "Slurm temporarily unable to accept job",
    "Job creation temporarily disabled",
    "Slurm job queue full",
    "Resource temporarily unavailable",
    "Transport endpoint is not connected",
    "Communication connection failure",
    # What a controller restart (or fail-over) answers for a few seconds: the RPC reached a
    # daemon that was not ready to serve it.
    "Unexpected message received",
    "Message receive failure",
    "Message send failure",
    "Communication shutdown failure",
    "Slurm backup controller in standby mode",
    "Process is shutting down",
    "Rate limit exceeded",
    "Connection timed out",
    "Job can not be altered now, try again later",
)
# Known refusals; listed so their messages read well, anything unrecognised is permanent too.
_PERMANENT = (
    "Invalid qos specification",
    "Invalid partition name specified",
    "Invalid account",
    "Requested node configuration is not available",
    "Invalid generic resource (gres) specification",
    "Requested time limit is invalid",
    "Memory specification can not be satisfied",
    "CPU count per node can not be satisfied",
    "Invalid feature specification",
    "Job violates accounting/QOS policy",
    "Access/permission denied",
)

# Prefixes that repeat what the caller already knows.
_NOISE_PREFIX = re.compile(
    r"^(?:[\w.-]+: )?(?:error: )?(?:Batch job submission failed: |allocation failure: "
    r"|slurm_load_jobs error: |slurm_suspend error: )?",
)


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(needle.lower() in lowered for needle in needles)


def classify(result: CommandResult) -> Outcome:
    if result.timed_out:
        return Outcome.TRANSIENT
    if result.ok:
        return Outcome.OK
    text = f"{result.stderr}\n{result.stdout}"
    if _contains_any(text, _ACCOUNTING_OFF):
        return Outcome.ACCOUNTING_OFF
    if _contains_any(text, _TRANSIENT):
        return Outcome.TRANSIENT
    if _contains_any(text, _ABSENT):
        return Outcome.ABSENT
    return Outcome.PERMANENT


def slurm_words(result: CommandResult) -> str:
    """Slurm's own message: the error lines without the ``sbatch: error:`` noise, the summary
    line first (``Invalid partition name specified (invalid partition specified: x)``)."""
    if result.timed_out:
        return f"no answer within {result.duration:.0f} s"
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "failure" in line.lower()]
    messages: list[str] = []
    for line in errors or lines:
        message = _NOISE_PREFIX.sub("", line).strip()
        if message and message not in messages:
            messages.append(message)
    if not messages:
        return f"exit status {result.returncode}"
    summary = next((m for m in reversed(messages) if _contains_any(m, _PERMANENT)), messages[-1])
    others = [m for m in messages if m != summary]
    return f"{summary} ({'; '.join(others)})" if others else summary


def error_for(result: CommandResult, outcome: Outcome, request: str) -> SlurmError:
    """The one-line error for a failed command; ``request`` names what was asked, e.g.
    ``the submission of job 'x'``."""
    words = slurm_words(result)
    if outcome is Outcome.TRANSIENT:
        return SlurmTransientError(f"Slurm did not answer {request}: {words}")
    return SlurmPermanentError(f"Slurm refused {request}: {words}")
