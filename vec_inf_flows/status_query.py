"""Gathering what status is decided from, for any number of jobs: ONE scheduler query, each
job's folder (ours, or vec-inf's), its logs, and concurrent ``/health`` probes of the servers
whose logs say they started. ``status.decide`` then turns each job's evidence into its status.

Kept apart from the client so the evidence-gathering reads in one place; like the client's
module level it imports only what ``status`` needs, since ``status`` must start fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vec_inf_flows import jobdir
from vec_inf_flows.backends.base import Backend
from vec_inf_flows.errors import JobNotFoundError
from vec_inf_flows.jobfiles import JobFiles
from vec_inf_flows.jobs import JobId, JobRecord
from vec_inf_flows.origin import (
    JOB_NAME_MARKER,
    OUR_NAME,
    VECINF_SUFFIX,
    JobOrigin,
    foreign_status,
    recognise,
)
from vec_inf_flows.server_status import StatusResponse

if TYPE_CHECKING:
    from vec_inf_flows.server.http import HealthResult
    from vec_inf_flows.server.logscan import LogVerdict


def job_files(job_id: str, record: JobRecord | None, index_root: Path) -> JobFiles:
    """The job's folder: from our index, or where vec-inf wrote it (``origin``)."""
    found = recognise(job_id, record, index_root)
    if found.directory is None or found.stem is None:
        return JobFiles(None, None, found.origin)
    paths = jobdir.JobPaths(found.directory, found.stem)
    return JobFiles(paths, jobdir.read_json(paths.json), found.origin)


def query_statuses(
    backend: Backend,
    index_root: Path,
    job_ids: Sequence[str] | None,
    health_timeout: float,
) -> list[StatusResponse]:
    """Status of many servers from ONE scheduler query; None means all of the user's servers
    (ours, and those vec-inf launched)."""
    from vec_inf_flows.server.http import check_health_many

    if job_ids is None:
        records = {
            record.job_id: record
            for record in backend.list_jobs(VECINF_SUFFIX)
            if OUR_NAME.search(record.name) or record.name.endswith(VECINF_SUFFIX)
        }
        ids = sorted(records, key=JobId.parse)
    else:
        ids = [str(JobId.parse(job_id)) for job_id in job_ids]
        records = backend.query(ids) if ids else {}
    files = {job_id: job_files(job_id, records.get(job_id), index_root) for job_id in ids}
    verdicts = {job_id: files[job_id].log_verdict() for job_id in ids}
    to_probe = {
        job_id: address
        for job_id in ids
        if (address := files[job_id].server_address)
        and verdicts[job_id] is not None
        and verdicts[job_id].ready  # type: ignore[union-attr]
        and (rec := records.get(job_id)) is not None
        and not rec.phase.terminal
    }
    health = check_health_many(list(to_probe.values()), timeout=health_timeout)
    unanswered = getattr(backend, "accounting_error", None)
    return [
        _decide(
            job_id,
            records.get(job_id),
            files[job_id],
            verdicts[job_id],
            health.get(to_probe.get(job_id, "")),
            index_root,
            unanswered,
        )
        for job_id in ids
    ]


def _decide(
    job_id: str,
    record: JobRecord | None,
    files: JobFiles,
    verdict: LogVerdict | None,
    health: HealthResult | None,
    index_root: Path,
    accounting_error: str | None,
) -> StatusResponse:
    from vec_inf_flows.status import decide

    if record is None and files.config is None:
        raise JobNotFoundError(
            f"Job {job_id} is unknown: Slurm does not know it and no job record of "
            f"vec-inf-flows names it (looked in {index_root / jobdir.INDEX_DIR})."
            + (
                f" Slurm's accounting did not answer: {accounting_error}"
                if accounting_error
                else ""
            )
        )
    if record is not None and files.origin is JobOrigin.FOREIGN:
        return foreign_status(job_id, record)
    model_name = files.model_name or model_from_job_name(record.name if record else "")
    response = decide(
        job_id=job_id,
        model_name=model_name,
        record=record,
        verdict=verdict,
        health=health,
        server_address=files.server_address,
        shutdown_requested=files.shutdown_requested,
        engine_exit=files.engine_exit,
        evidence=files.evidence,
    )
    if files.paths is not None and response.job_dir is None:
        response = response.model_copy(update={"job_dir": str(files.paths.directory)})
    return response


def model_from_job_name(name: str) -> str:
    head, marker, _ = name.rpartition(JOB_NAME_MARKER)
    return head if marker else (name or "unknown")
