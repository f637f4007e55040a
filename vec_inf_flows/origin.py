"""Who launched a job: this tool, vec-inf itself, or neither - and where its log folder is.

A team switching from vec-inf has servers that vec-inf launched still running. Those jobs follow
vec-inf's layout (job name ``<model>-vec-inf``, folder ``<log_dir>/<family>/<model>.<id>/`` with
``<model>.<id>.json`` holding ``server_address``, ``.out`` / ``.err`` beside it), which is close
enough to ours that status reads them the same way. Het-job components ``MAIN+N`` are written
by vec-inf under the number MAIN+N.

``recognise`` is the one place that decides; shutdown's ownership check asks it too (a job
vec-inf launched may be shut down, a job neither tool launched is not ours to cancel).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vec_inf_flows import jobdir
from vec_inf_flows.jobs import JobId, JobRecord
from vec_inf_flows.server_status import ServerStatus, StatusResponse

JOB_NAME_MARKER = "-vec-inf-"  # our job names: <model>-vec-inf-<token>
OUR_NAME = re.compile(r"-vec-inf-[0-9a-f]{8}$")  # <model>-vec-inf-<token>, BATCH-vec-inf-<token>
VECINF_SUFFIX = "-vec-inf"
VECINF_LOG_ROOT = "~/.vec-inf-logs"  # vec-inf's default log_dir


class JobOrigin(StrEnum):
    OURS = "vec-inf-flows"  # launched by vec-inf-flows (our job index or our job name)
    VEC_INF = "vec-inf"  # launched by vec-inf itself (its log layout): a server we can manage
    FOREIGN = "foreign"  # neither: a plain sbatch job, or an id nobody knows


@dataclass(frozen=True)
class Recognition:
    origin: JobOrigin
    directory: Path | None = None  # the job's log folder, when found
    stem: str | None = None  # "<model>.<id>": the folder's file names without extension

    @property
    def model_name(self) -> str | None:
        return self.stem.rsplit(".", 1)[0] if self.stem else None


def file_id(job_id: str) -> str:
    """The number a job's files carry: vec-inf names het component MAIN+N's files MAIN+N."""
    parsed = JobId.parse(job_id)
    return str(parsed.main + (parsed.offset or 0))


def log_roots(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Where vec-inf's folders may be: ``$VEC_INF_LOG_DIR``, vec-inf's default, and ``extra``."""
    roots = [*extra, os.environ.get("VEC_INF_LOG_DIR", ""), VECINF_LOG_ROOT]
    found: list[Path] = []
    for root in roots:
        if root:
            path = Path(root).expanduser()
            if path not in found:
                found.append(path)
    return found


def recognise(
    job_id: str,
    record: JobRecord | None,
    index_root: Path,
    roots: Sequence[Path] | None = None,
) -> Recognition:
    """Decide who launched ``job_id`` from our index, the scheduler's job name and the disk."""
    directory = jobdir.lookup(index_root, job_id)
    if directory is not None:
        return Recognition(JobOrigin.OURS, directory, directory.name)
    name = record.name if record is not None else ""
    if OUR_NAME.search(name):
        return Recognition(JobOrigin.OURS)
    model = name.removesuffix(VECINF_SUFFIX) if name.endswith(VECINF_SUFFIX) else None
    found = find_vecinf_files(job_id, model, log_roots() if roots is None else roots)
    if found is None:  # a --log-dir of its own, or no record given: ask Slurm where
        found = _json_beside_stdout(job_id, model)
    if found is not None:
        return Recognition(JobOrigin.VEC_INF, found.parent, found.name.removesuffix(".json"))
    if model is not None:
        return Recognition(JobOrigin.VEC_INF, stem=f"{model}.{file_id(job_id)}")
    return Recognition(JobOrigin.FOREIGN)


def _json_beside_stdout(job_id: str, model: str | None) -> Path | None:
    """vec-inf's JSON in the folder of the job's StdOut, as ``scontrol`` reports it (the model
    from the job name when not known yet)."""
    from vec_inf_flows.backends.slurm.runner import run_command
    from vec_inf_flows.errors import SlurmError

    try:
        result = run_command(["scontrol", "show", "job", "--oneliner", job_id], timeout=10.0)
    except SlurmError:
        return None
    match = re.search(r"(?:^|\s)StdOut=(\S+)", result.stdout) if result.ok else None
    name = re.search(r"(?:^|\s)JobName=(\S+)", result.stdout) if result.ok else None
    if model is None and name is not None and name.group(1).endswith(VECINF_SUFFIX):
        model = name.group(1).removesuffix(VECINF_SUFFIX)
    if match is None or model is None:
        return None
    candidate = Path(match.group(1)).parent / f"{model}.{file_id(job_id)}.json"
    return candidate if candidate.is_file() else None


def find_vecinf_files(job_id: str, model: str | None, roots: Sequence[Path]) -> Path | None:
    """vec-inf's ``<model>.<id>.json`` of this job, in ``<root>/<family>/<model>.<id>/`` (or a
    batch's ``<root>/BATCH-.../BATCH-....<id>/``).

    With the model unknown (Slurm forgot the job) any ``<name>.<id>`` folder holding a
    ``*.<id>.json`` will do.
    """
    number = file_id(job_id)
    stem = f"{model}.{number}" if model else f"*.{number}"
    for root in roots:
        try:
            families = [entry.path for entry in os.scandir(root) if entry.is_dir()]
        except OSError:
            continue
        for family in families:
            for folder in (*Path(family).glob(stem), *Path(family).glob(f"BATCH-*.{number}")):
                found = sorted(folder.glob(f"{stem}.json"))
                if found:
                    return found[0]
    return None


def foreign_status(job_id: str, record: JobRecord) -> StatusResponse:
    """What status says of a job that is no server of ours: so, not an invented state."""
    return StatusResponse(
        job_id=job_id,
        model_name=record.name or "unknown",
        server_status=ServerStatus.FOREIGN,
        detail=f"not launched by vec-inf-flows or vec-inf (job name {record.name!r})",
        slurm_state=record.state,
        node=record.node,
    )


def shutdown_refusal(job_id: str, origin: JobOrigin, *, force: bool = False) -> str | None:
    """Why ``shutdown`` must not cancel this job, or None when it may.

    Servers launched by this tool or by vec-inf are ours to stop (teams switch with servers
    running); any other job is refused unless ``force`` says the user means it.
    """
    if origin is JobOrigin.FOREIGN and not force:
        return (
            f"Job {job_id} was not launched by vec-inf-flows or vec-inf; refusing to cancel it "
            "(pass --force to cancel it anyway)."
        )
    return None
