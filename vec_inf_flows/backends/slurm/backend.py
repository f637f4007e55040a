"""``SlurmBackend``: the ``Backend`` protocol over the Slurm command-line tools.

Costs are bounded on purpose: a status poll of any number of jobs is one squeue call (plus one
sacct call only for ids squeue no longer knows), and ``commands_run`` counts every command so
tests and benchmarks can hold us to that. Read-only calls and scancel retry transient errors
with exponential backoff and jitter. Submission is never blindly retried: after an ambiguous
failure the job is looked up by its unique name first, so one launch never makes two jobs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vec_inf_flows.backends.slurm.commands import SlurmCommands, chunks
from vec_inf_flows.backends.slurm.errors import Outcome, classify, error_for
from vec_inf_flows.backends.slurm.parse import (
    ParsedJob,
    SlurmParseError,
    parse_sacct,
    parse_squeue,
    parse_submitted_id,
)
from vec_inf_flows.backends.slurm.runner import CommandResult, run_command
from vec_inf_flows.errors import (
    JobNotFoundError,
    SlurmError,
    SlurmPermanentError,
    SlurmTransientError,
)
from vec_inf_flows.jobs import JobId, JobRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure."""

    attempts: int = 4  # tries per call, the first one included
    base_delay: float = 1.0  # seconds before the first retry; doubles each time
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Exponential backoff with jitter, so many clients do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _matches(wanted: JobId, job: ParsedJob) -> bool:
    """A plain id matches a job, every component of a het job, or a component's unique id;
    ``N+M`` matches that component only."""
    if wanted.offset is not None:
        return job.job_id == wanted
    return job.job_id.main == wanted.main or job.unique_id == str(wanted.main)


def _leaders(jobs: Sequence[ParsedJob]) -> list[str]:
    return [str(main) for main in sorted({job.job_id.main for job in jobs})]


class SlurmBackend:
    """Jobs on a Slurm cluster, through sbatch, squeue, sacct, scancel and scontrol."""

    name = "slurm"

    def __init__(
        self,
        *,
        commands: SlurmCommands | None = None,
        retry: RetryPolicy | None = None,
        query_timeout: float = 30.0,
        submit_timeout: float = 150.0,
        accounting: bool | None = None,
        accounting_window: timedelta = timedelta(days=7),
        preflight: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """``submit_timeout`` is long because sbatch retries a busy controller by itself for up
        to ~2 minutes. ``accounting=None`` detects whether sacct works on first use.
        ``accounting_window`` bounds sacct searches when no submission time is known.
        ``preflight`` checks a held job with ``sbatch --test-only`` first: Slurm accepts a held
        job it can never run and only fails it on release."""
        self.commands = commands or SlurmCommands()
        self.retry = retry or RetryPolicy()
        self.query_timeout = query_timeout
        self.submit_timeout = submit_timeout
        self.accounting = accounting
        self.accounting_window = accounting_window
        self.preflight = preflight
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.command_counts: Counter[str] = Counter()
        # Why sacct could not answer the last query (None when it did): jobs squeue no longer
        # lists are then decided from their job dirs, and "unknown id" says it may be this.
        self.accounting_error: str | None = None

    @property
    def commands_run(self) -> int:
        """How many Slurm commands this backend has run (retries included)."""
        return sum(self.command_counts.values())

    # -- running commands ------------------------------------------------------------------

    def _run(
        self, kind: str, argv: list[str], timeout: float, stdin_text: str | None = None
    ) -> CommandResult:
        with self._lock:
            self.command_counts[kind] += 1
        result = run_command(argv, timeout=timeout, stdin_text=stdin_text)
        logger.debug(
            "%s rc=%s %.3fs %s", argv, result.returncode, result.duration, result.stderr.strip()
        )
        return result

    def _pause(self, retry: int, request: str, result: CommandResult) -> None:
        delay = self.retry.delay(retry, self._rng)
        logger.warning(
            "Slurm did not answer %s (%s); retrying in %.1f s",
            request,
            result.stderr.strip() or "timeout",
            delay,
        )
        self._sleep(delay)

    def _call(
        self,
        kind: str,
        argv: list[str],
        request: str,
        *,
        timeout: float | None = None,
        stdin_text: str | None = None,
    ) -> tuple[CommandResult, Outcome]:
        """Run an idempotent command, retrying transient failures. Returns OK, ABSENT or
        ACCOUNTING_OFF; raises on anything else."""
        for attempt in range(self.retry.attempts):
            result = self._run(kind, argv, timeout or self.query_timeout, stdin_text)
            outcome = classify(result)
            if outcome is not Outcome.TRANSIENT:
                break
            if attempt + 1 < self.retry.attempts:
                self._pause(attempt, request, result)
        if outcome in (Outcome.OK, Outcome.ABSENT, Outcome.ACCOUNTING_OFF):
            return result, outcome
        raise error_for(result, outcome, request)

    # -- submit ----------------------------------------------------------------------------

    def submit(self, script: str, job_name: str, *, hold: bool = True) -> str:
        request = f"the submission of job {job_name!r}"
        argv = self.commands.submit(job_name, hold=hold)
        if hold and self.preflight:
            self._preflight(job_name, request, script)
        for attempt in range(self.retry.attempts):
            result = self._run("sbatch", argv, self.submit_timeout, script)
            outcome = classify(result)
            if outcome is Outcome.OK:
                try:
                    return parse_submitted_id(result.stdout)
                except SlurmParseError:
                    if found := self.find_by_name(job_name):
                        return found[0]
                    raise
            if outcome is not Outcome.TRANSIENT:
                raise error_for(result, outcome, request)
            # Ambiguous: the controller may have created the job before the answer was lost.
            # Give an in-flight request time to land, then look before submitting again.
            self._pause(attempt, request, result)
            if found := self._created_anyway(job_name):
                logger.warning("sbatch failed but job %s (%s) exists; using it", found[0], job_name)
                return found[0]
        raise error_for(result, Outcome.TRANSIENT, request)

    def _preflight(self, job_name: str, request: str, script: str) -> None:
        """``sbatch --test-only``: refuse now what Slurm would only refuse after release.

        Right after a controller restart the nodes are "unknown" for a few seconds and the test
        says "node configuration is not available" for any request; that is retried, not final.
        """
        test = self.commands.submit(job_name, hold=False, test_only=True)
        for attempt in range(self.retry.attempts):
            try:
                self._call("sbatch", test, request, stdin_text=script)
                return
            except SlurmPermanentError as error:
                settling = "configuration is not available" in str(error) and self._settling()
                if not settling or attempt + 1 == self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt, self._rng)
                logger.warning("nodes are still registering; retrying %s in %.1f s", request, delay)
                self._sleep(delay)

    def _settling(self) -> bool:
        """Some node is not (yet) responding: unknown, booting, or flagged with ``*``."""
        result = self._run("sinfo", self.commands.node_states(), self.query_timeout)
        states = result.stdout.split() if classify(result) is Outcome.OK else []
        return any("*" in state or state.startswith(("unk", "boot", "pow")) for state in states)

    def _created_anyway(self, job_name: str) -> list[str]:
        try:
            return self.find_by_name(job_name)
        except SlurmTransientError as error:
            raise SlurmTransientError(
                f"Cannot tell whether job {job_name!r} was created (look for it with "
                f"squeue --name={job_name}): {error}"
            ) from error

    def release(self, job_id: str) -> None:
        wanted = JobId.parse(job_id)
        request = f"the release of job {wanted}"
        _, outcome = self._call("scontrol", self.commands.release(wanted), request)
        if outcome is Outcome.ABSENT:
            raise JobNotFoundError(f"Cannot release job {wanted}: Slurm does not know it.")

    def cancel(self, job_ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(JobId.parse(job_id) for job_id in job_ids))
        for chunk in chunks(wanted):
            self._call("scancel", self.commands.cancel(chunk), "the cancel request")

    # -- queries ---------------------------------------------------------------------------

    def query(
        self, job_ids: Sequence[str], *, submitted_after: datetime | None = None
    ) -> dict[str, JobRecord]:
        wanted = list(dict.fromkeys(JobId.parse(job_id) for job_id in job_ids))
        found: list[ParsedJob] = []
        for chunk in chunks(wanted):
            argv = self.commands.queue_by_ids(chunk)
            result, outcome = self._call("squeue", argv, "the job status query")
            if outcome is Outcome.OK:
                found += [job for job in parse_squeue(result.stdout) if _wanted(job, chunk)]
        missing = [job_id for job_id in wanted if not any(_matches(job_id, j) for j in found)]
        self.accounting_error = None
        if missing:
            since = self._sacct_since(submitted_after)
            try:
                accounted = self._accounting_jobs(since, missing)
            except SlurmError as error:
                # squeue answered, so none of these runs; how they ended is in their job dirs.
                logger.info("sacct cannot answer (%s); ended jobs are judged by files", error)
                self.accounting_error = str(error)
                accounted = []
            found += [job for job in accounted if _wanted(job, missing)]
        records: dict[str, JobRecord] = {}
        for job in found:  # squeue rows come first: the controller's view wins
            records.setdefault(job.record.job_id, job.record)
        return records

    def list_jobs(self, name_suffix: str | None = None) -> list[JobRecord]:
        """The user's jobs squeue knows, in one call; ``name_suffix`` keeps names containing it."""
        result, _ = self._call("squeue", self.commands.queue_mine(), "the job listing")
        records = [job.record for job in parse_squeue(result.stdout)]
        if name_suffix is None:
            return records
        return [record for record in records if name_suffix in record.name]

    def find_by_name(self, job_name: str) -> list[str]:
        """Leader ids of the user's jobs with exactly this name: squeue, then sacct."""
        argv = self.commands.queue_mine(job_name)
        result, _ = self._call("squeue", argv, f"the lookup of job {job_name!r}")
        jobs = [job for job in parse_squeue(result.stdout) if job.record.name == job_name]
        if not jobs:
            since = datetime.now(UTC) - self.accounting_window
            jobs = [
                j for j in self._accounting_jobs(since, (), job_name) if j.record.name == job_name
            ]
        return _leaders(jobs)

    def _sacct_since(self, submitted_after: datetime | None) -> datetime:
        if submitted_after is None:
            return datetime.now(UTC) - self.accounting_window
        return submitted_after - timedelta(hours=1)  # clock skew between hosts

    def _accounting_jobs(
        self, since: datetime, ids: Sequence[JobId], job_name: str | None = None
    ) -> list[ParsedJob]:
        """Rows from sacct; nothing at all when the cluster has no accounting."""
        if self.accounting is False:
            return []
        jobs: list[ParsedJob] = []
        for chunk in chunks(ids) if ids else [[]]:
            argv = self.commands.accounting(since, chunk, job_name)
            result, outcome = self._call("sacct", argv, "the accounting query")
            if outcome is Outcome.ACCOUNTING_OFF:
                logger.info("Slurm accounting is disabled: jobs are followed with squeue only")
                self.accounting = False
                return []
            self.accounting = True
            jobs += parse_sacct(result.stdout)
        return jobs


def _wanted(job: ParsedJob, wanted: Sequence[JobId]) -> bool:
    return any(_matches(job_id, job) for job_id in wanted)
