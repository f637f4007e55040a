"""Argument lists for the Slurm commands: pure, no I/O.

Every option is spelled out (format, states, delimiter) so that a user's ``SQUEUE_FORMAT`` or a
site default cannot change what the parsers read. Values travel as separate argv items, never
through a shell; the only values that could still break a command line are NUL and line breaks,
so those are refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from vec_inf_flows.errors import ConfigError, quote
from vec_inf_flows.jobs import JobId

# Very many ids on one command line are split into calls of this size (argv and RPC size).
MAX_IDS_PER_CALL = 500

# squeue --Format fields; ":0" means no padding, "|" is the separator. The name is last because
# it is the only free-text field and may itself contain "|".
SQUEUE_FIELDS = ("JobID", "JobArrayID", "State", "Reason", "BatchHost", "NodeList", "exit_code")
SQUEUE_FORMAT = ",".join(f"{field}:0|" for field in SQUEUE_FIELDS) + ",Name:0"

# sacct --format fields, free-text name last for the same reason.
SACCT_FIELDS = ("JobIDRaw", "JobID", "State", "ExitCode", "Reason", "NodeList", "Submit", "End")
SACCT_FORMAT = ",".join((*SACCT_FIELDS, "JobName"))

_FORBIDDEN = {"\0": "NUL", "\n": "newline", "\r": "carriage return"}


def checked(value: str, what: str) -> str:
    """Return ``value`` if it can travel as one argv item; refuse NUL and line breaks."""
    for char, label in _FORBIDDEN.items():
        if char in value:
            raise ConfigError(f"{what} must not contain a {label}: {quote(value)}")
    if not value:
        raise ConfigError(f"{what} must not be empty")
    return value


def slurm_time(moment: datetime) -> str:
    """A timestamp as Slurm reads it under ``TZ=UTC`` (naive datetimes count as local time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def chunks(ids: Sequence[JobId], size: int = MAX_IDS_PER_CALL) -> Iterator[list[JobId]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _joined(ids: Sequence[JobId]) -> str:
    if not ids:
        raise ValueError("at least one job id is needed")
    return ",".join(str(job_id) for job_id in ids)


@dataclass(frozen=True)
class SlurmCommands:
    """Where the Slurm commands are; a test may point one at a wrapper to inject a fault."""

    sbatch: str = "sbatch"
    squeue: str = "squeue"
    sacct: str = "sacct"
    scancel: str = "scancel"
    scontrol: str = "scontrol"
    sinfo: str = "sinfo"

    def node_states(self) -> list[str]:
        """One compact state word per node group (``idle``, ``unk*``, ``down*`` ...)."""
        return [self.sinfo, "--noheader", "--format=%t"]

    def submit(self, job_name: str, *, hold: bool, test_only: bool = False) -> list[str]:
        """sbatch reading the script from stdin; ``--parsable`` prints ``ID[;CLUSTER]``."""
        argv = [self.sbatch, "--parsable", f"--job-name={checked(job_name, 'job name')}"]
        if hold:
            argv.append("--hold")
        if test_only:
            argv.append("--test-only")
        return argv

    def _squeue(self) -> list[str]:
        return [self.squeue, "--noheader", "--array", "--states=all", f"--Format={SQUEUE_FORMAT}"]

    def queue_by_ids(self, ids: Sequence[JobId]) -> list[str]:
        """Live jobs (slurmctld's memory, ended ones included until MinJobAge purges them)."""
        return [*self._squeue(), f"--jobs={_joined(ids)}"]

    def queue_mine(self, job_name: str | None = None) -> list[str]:
        argv = [*self._squeue(), "--me"]
        if job_name is not None:
            argv.append(f"--name={checked(job_name, 'job name')}")
        return argv

    def accounting(
        self, since: datetime, ids: Sequence[JobId] = (), job_name: str | None = None
    ) -> list[str]:
        """sacct for jobs gone from squeue. ``since`` bounds the search: without it Slurm
        searches from the epoch and can return an old job that had the same (recycled) id."""
        argv = [
            self.sacct,
            "--noheader",
            "--parsable2",
            "--allocations",
            f"--starttime={slurm_time(since)}",
            f"--format={SACCT_FORMAT}",
        ]
        if ids:
            argv.append(f"--jobs={_joined(ids)}")
        if job_name is not None:
            argv.append(f"--name={checked(job_name, 'job name')}")
        return argv

    def cancel(self, ids: Sequence[JobId]) -> list[str]:
        """Plain scancel: ids that already ended or were purged are not an error (rc 0)."""
        return [self.scancel, *(str(job_id) for job_id in ids)]

    def release(self, job_id: JobId) -> list[str]:
        return [self.scontrol, "release", str(job_id)]
