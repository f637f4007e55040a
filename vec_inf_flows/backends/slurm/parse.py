"""Strict parsers for what sbatch, squeue and sacct print, and the one Slurm-state table.

A line that does not have the shape we asked for is an error (the output format changed, and
guessing would mis-report jobs); a state word we do not know is not: it becomes ``UNKNOWN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vec_inf_flows.backends.slurm.commands import SACCT_FIELDS, SQUEUE_FIELDS
from vec_inf_flows.errors import SlurmError
from vec_inf_flows.jobs import JobId, JobPhase, JobRecord


class SlurmParseError(SlurmError):
    """Slurm printed something other than the format we asked for."""


# Every state word squeue (%T, flags win over the base state) or sacct can print.
STATE_PHASES: dict[str, JobPhase] = {
    "PENDING": JobPhase.PENDING,
    "REQUEUED": JobPhase.PENDING,
    "REQUEUE_FED": JobPhase.PENDING,
    "REQUEUE_HOLD": JobPhase.PENDING,
    "SPECIAL_EXIT": JobPhase.PENDING,  # held for requeue after a special exit code
    "RESV_DEL_HOLD": JobPhase.PENDING,
    "SUSPENDED": JobPhase.PENDING,
    "STOPPED": JobPhase.PENDING,
    "POWER_UP_NODE": JobPhase.PENDING,
    "CONFIGURING": JobPhase.RUNNING,
    "RUNNING": JobPhase.RUNNING,
    "RESIZING": JobPhase.RUNNING,
    "SIGNALING": JobPhase.RUNNING,
    "UPDATE_DB": JobPhase.RUNNING,
    "COMPLETING": JobPhase.ENDING,
    "STAGE_OUT": JobPhase.ENDING,
    "EXPEDITING": JobPhase.ENDING,
    "COMPLETED": JobPhase.COMPLETED,
    "CANCELLED": JobPhase.CANCELLED,
    "REVOKED": JobPhase.CANCELLED,  # a federation sibling ran elsewhere
    "FAILED": JobPhase.FAILED,
    "TIMEOUT": JobPhase.FAILED,
    "DEADLINE": JobPhase.FAILED,
    "NODE_FAIL": JobPhase.FAILED,
    "BOOT_FAIL": JobPhase.FAILED,
    "OUT_OF_MEMORY": JobPhase.FAILED,
    "PREEMPTED": JobPhase.FAILED,  # without --requeue the job is over
    "LAUNCH_FAILED": JobPhase.FAILED,
    "RECONFIG_FAIL": JobPhase.FAILED,
}

# Ended states whose own name says why the job ended.
_SELF_EXPLAINING = frozenset(
    {"TIMEOUT", "DEADLINE", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "REVOKED"}
)

_SUBMITTED = re.compile(r"\s*(?P<id>\d+)(?:;\S+)?\s*")
_LEADER_OR_COMPONENT = re.compile(r"\d+(?:\+\d+)?")
_UNIQUE_ID = re.compile(r"\d+")
_EXIT_CODE = re.compile(r"(?P<exit>\d+):(?P<signal>\d+)")
_NOISE = re.compile(r"CLUSTER: \S+|[\w.-]+: (?:error|warning|debug\d?): .*")
_NO_NODE = frozenset({"", "n/a", "None assigned", "(null)"})


@dataclass(frozen=True)
class ParsedJob:
    """A record, plus Slurm's unique id (a het component has its own, e.g. 8 for 7+1)."""

    unique_id: str
    record: JobRecord

    @property
    def job_id(self) -> JobId:
        return JobId.parse(self.record.job_id)


def base_state(state: str) -> str:
    """``"CANCELLED by 0"`` -> ``"CANCELLED"``; sacct may also add a ``+`` when truncating."""
    words = state.split()
    return words[0].rstrip("+").upper() if words else ""


def phase_of(state: str) -> JobPhase:
    return STATE_PHASES.get(base_state(state), JobPhase.UNKNOWN)


def parse_submitted_id(stdout: str) -> str:
    """The job id from ``sbatch --parsable`` (``ID`` or ``ID;CLUSTER``), ignoring other lines."""
    ids = [m.group("id") for line in stdout.splitlines() if (m := _SUBMITTED.fullmatch(line))]
    if not ids:
        raise SlurmParseError(f"sbatch printed no job id: {stdout.strip()!r}")
    return ids[-1]


def first_node(node_list: str) -> str | None:
    """The first host of a Slurm host list: ``node[3-5,9],gpu1`` -> ``node3``."""
    node_list = node_list.strip()
    if node_list in _NO_NODE:
        return None
    match = re.match(r"([^,\[]+)(?:\[(\d+))?", node_list)
    if match is None:
        return None
    prefix, first_index = match.groups()
    return prefix + (first_index or "")


def exit_code_from_wait_status(value: str) -> str | None:
    """squeue prints the raw wait status (768 = exit 3); sacct prints ``exit:signal``."""
    if _EXIT_CODE.fullmatch(value):
        return value
    if not value.isdigit():
        return None
    status = int(value)
    return f"{status >> 8}:{status & 0x7F}"


def why_ended(state: str, slurm_reason: str | None, exit_code: str | None) -> str | None:
    """A short cause for an ended job, e.g. ``TIMEOUT`` or ``NonZeroExitCode (exit code 3)``."""
    base = base_state(state)
    if base in _SELF_EXPLAINING:
        return base
    if base == "CANCELLED":
        return state
    if base == "COMPLETED":
        return None
    detail = None
    if exit_code and (match := _EXIT_CODE.fullmatch(exit_code)):
        code, signal = int(match.group("exit")), int(match.group("signal"))
        detail = f"killed by signal {signal}" if signal else f"exit code {code}" if code else None
    cause = slurm_reason or ("NonZeroExitCode" if detail and "exit" in detail else None)
    if cause and detail:
        return f"{cause} ({detail})"
    return cause or detail


def _reason(state: str, slurm_reason: str, exit_code: str | None) -> str | None:
    given = None if slurm_reason in ("", "None", "(null)") else slurm_reason
    phase = phase_of(state)
    if phase.terminal:
        return why_ended(state, given, exit_code)
    if phase is JobPhase.RUNNING:
        return None
    return given


def _meaningful_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip() and not _NOISE.fullmatch(line)]


def _split(line: str, fields: int, command: str) -> list[str]:
    parts = line.split("|", fields)
    if len(parts) != fields + 1:
        raise SlurmParseError(f"{command} printed a line of unexpected shape: {line!r}")
    return parts


def _displayed_id(shown: str, unique_id: str, line: str, command: str) -> str:
    if not _UNIQUE_ID.fullmatch(unique_id):
        raise SlurmParseError(f"{command} printed a line without a job id: {line!r}")
    if _LEADER_OR_COMPONENT.fullmatch(shown):
        return shown
    # An array task ("12_3", "12_[4-9]"): its unique id is the only id a JobId can hold.
    return unique_id


def parse_squeue(stdout: str) -> list[ParsedJob]:
    """Rows of ``squeue --Format=SQUEUE_FORMAT``."""
    jobs = []
    for line in _meaningful_lines(stdout):
        unique_id, shown, state, reason, batch_host, node_list, exit_status, name = _split(
            line, len(SQUEUE_FIELDS), "squeue"
        )
        phase = phase_of(state)
        exit_code = exit_code_from_wait_status(exit_status) if phase.terminal else None
        record = JobRecord(
            job_id=_displayed_id(shown, unique_id, line, "squeue"),
            name=name,
            phase=phase,
            state=state,
            reason=_reason(state, reason, exit_code),
            exit_code=exit_code,
            node=first_node(batch_host) or first_node(node_list),
            source="squeue",
        )
        jobs.append(ParsedJob(unique_id, record))
    return jobs


def parse_sacct(stdout: str) -> list[ParsedJob]:
    """Rows of ``sacct --parsable2 --allocations --format=SACCT_FORMAT``; a later row for the
    same job (a requeued job's last run) replaces an earlier one."""
    jobs: dict[str, ParsedJob] = {}
    for line in _meaningful_lines(stdout):
        unique_id, shown, state, exit_code, reason, node_list, _submit, _end, name = _split(
            line, len(SACCT_FIELDS), "sacct"
        )
        if "." in shown:  # a step; --allocations should have hidden it
            continue
        valid_exit = exit_code if _EXIT_CODE.fullmatch(exit_code) else None
        phase = phase_of(state)
        record = JobRecord(
            job_id=_displayed_id(shown, unique_id, line, "sacct"),
            name=name,
            phase=phase,
            state=state,
            reason=_reason(state, reason, valid_exit),
            exit_code=valid_exit if phase.terminal else None,
            node=first_node(node_list),
            source="sacct",
        )
        jobs[record.job_id] = ParsedJob(unique_id, record)
    return list(jobs.values())
