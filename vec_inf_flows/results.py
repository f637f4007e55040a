"""What the flows return: typed results that the CLI, the artifacts and the README render alike
(``presentation`` turns them into rows).

Results never hold a server's API key (handles in them are ``without_secret()``): a flow's
result may be persisted by Prefect, and a key must not land in a result store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vec_inf_flows.errors import VecInfError
from vec_inf_flows.evals.models import LmEvalScore
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.replicas.summary import ReplicaSummary
from vec_inf_flows.server.metrics import ServerMetrics
from vec_inf_flows.workload.stats import ChunkSummary, ErrorGroup, OutputDigest


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class WorkloadSummary(ChunkSummary):
    """A dataset sent through one server: the chunk counters summed over this run, except
    ``ok``, ``failed`` and ``invalid``, which count the whole output file (earlier runs too),
    and the failure reasons, grouped."""

    dataset: str
    output: str
    chunks: int = Field(description="Task runs the dataset was sent in.")
    errors: list[ErrorGroup] = Field(default=[], description="Why requests failed, grouped.")
    relaunches: int = Field(default=0, description="Servers replaced after dying mid-run.")
    scorer: str | None = Field(default=None, description="How answers were scored.")
    scored: int = Field(default=0, description="Results scored against a reference.")
    score: float | None = Field(default=None, description="Their mean score (0 to 1).")

    @classmethod
    def of(
        cls,
        dataset: str,
        output: str,
        chunks: Sequence[ChunkSummary],
        digest: OutputDigest,
        scorer: str | None = None,
    ) -> WorkloadSummary:
        elapsed = round(sum(chunk.elapsed_s for chunk in chunks), 4)
        sent = sum(chunk.ok + chunk.failed for chunk in chunks)
        completion = sum(chunk.completion_tokens for chunk in chunks)
        return cls(
            dataset=dataset,
            output=output,
            chunks=len(chunks),
            total=sum(chunk.total for chunk in chunks),
            ok=digest.ok,
            failed=digest.failed,
            invalid=digest.invalid,
            skipped=sum(chunk.skipped for chunk in chunks),
            retries=sum(chunk.retries for chunk in chunks),
            prompt_tokens=sum(chunk.prompt_tokens for chunk in chunks),
            completion_tokens=completion,
            elapsed_s=elapsed,
            requests_per_s=round(sent / elapsed, 3) if elapsed else 0.0,
            completion_tokens_per_s=round(completion / elapsed, 3) if elapsed else 0.0,
            latency_s=digest.latency_s,
            ttft_s=digest.ttft_s,
            errors=digest.errors,
            scorer=scorer if digest.scored else None,
            scored=digest.scored,
            score=digest.score,
        )

    @property
    def attempted(self) -> int:
        return self.ok + self.failed + self.invalid

    def failure_text(self, groups: int = 3) -> str:
        """``20 failed: 20 × HTTP 401: Unauthorized`` (the most frequent reasons)."""
        unanswered = self.failed + self.invalid
        if not unanswered:
            return "0 failed"
        shown = "; ".join(f"{group.count} × {group.reason}" for group in self.errors[:groups])
        more = len(self.errors) - groups
        return f"{unanswered} failed: {shown}" + (f"; {more} more reasons" if more > 0 else "")

    def shortfall(self, min_success_ratio: float) -> str | None:
        """Why this workload counts as failed, or None: nothing answered out of what was tried,
        or fewer than ``min_success_ratio`` of it."""
        if not self.attempted:
            return None
        if self.ok and self.ok >= min_success_ratio * self.attempted:
            return None
        needed = f" (at least {min_success_ratio:.0%} needed)" if self.ok else ""
        return (
            f"{self.ok} of {self.attempted} requests of {self.dataset} succeeded{needed}; "
            f"{self.failure_text()}"
        )


class ServeResult(_Result):
    """One server's run: the server, the workload sent to it, its metrics at the end."""

    server: ServerHandle
    launched: bool = Field(description="Whether this run launched (and shut down) the server.")
    workload: WorkloadSummary | None = None
    custom: dict[str, Any] | None = Field(
        default=None, description="What a workload callable returned."
    )
    metrics: ServerMetrics | None = None
    metrics_error: str | None = None
    replicas: ReplicaSummary | None = Field(
        default=None, description="The replica group that served it, when there was one."
    )


class EvaluationRow(_Result):
    """One model on one dataset in ``evaluate``, or on one lm-eval task (``lm_eval`` set, the
    dataset ``lm-eval:<task>``)."""

    model: str
    dataset: str
    job_id: str | None = None
    status: Literal["ok", "failed"]
    error: str | None = None
    workload: WorkloadSummary | None = None
    metrics: ServerMetrics | None = None
    replicas: ReplicaSummary | None = None
    lm_eval: LmEvalScore | None = Field(
        default=None, description="The lm-eval task's primary metric, for an lm-eval row."
    )
    previous_score: float | None = Field(
        default=None, description="The score of the previous run of this evaluation."
    )

    @property
    def score(self) -> float | None:
        if self.lm_eval is not None:
            return self.lm_eval.value
        return self.workload.score if self.workload is not None else None

    @property
    def scorer(self) -> str | None:
        """How the score was made: the dataset's scorer, or ``lm-eval:<metric>``."""
        if self.lm_eval is not None:
            return f"lm-eval:{self.lm_eval.metric}" if self.lm_eval.metric else None
        return self.workload.scorer if self.workload is not None else None


CleanupAction = Literal["cancelled", "would cancel", "cancel failed", "reported", "kept"]


class CleanupRow(_Result):
    """One live server the ``cleanup`` flow looked at: what it did, and why."""

    job_id: str
    model_name: str
    owner: str = Field(description="Who launched it (user@host pid, and the flow run).")
    flow_run_id: str | None = Field(default=None, description="The owning flow run, if any.")
    flow_run_state: str = Field(
        default="",
        description="The owning run's state on the cleanup run's own Prefect server; empty "
        "when it was not asked (another server, or no flow run).",
    )
    prefect_api_url: str | None = Field(
        default=None, description="The Prefect server of the owning flow run."
    )
    lease: str = Field(description="The server's lease: none, held, released or lapsed.")
    action: CleanupAction
    reason: str = Field(description="Why the cleanup run did what it did.")


class WorkloadFailed(VecInfError):
    """A run finished but too few requests succeeded; ``result`` holds what it did."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result
