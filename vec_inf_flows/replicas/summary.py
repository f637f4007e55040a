"""What a replica group did during a run, as results show it: which jobs served, which died and
what replaced them, which were released when the backlog drained, and the one endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["served", "lost", "released", "never ready"]


class ReplicaJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    outcome: Outcome
    base_url: str | None = None
    replaces: str | None = Field(default=None, description="The lost replica it replaced.")
    detail: str | None = Field(default=None, description="Why it was lost or released.")


class ReplicaSummary(BaseModel):
    """A replica group's part in a run (no secrets: safe to persist)."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    replicas: int = Field(description="Replicas asked for (the most, for an elastic group).")
    elastic: bool = False
    peak: int = Field(default=0, description="Most replicas held at once.")
    jobs: list[ReplicaJob] = []
    endpoint: str | None = Field(
        default=None, description="The router's OpenAI base URL, when a router ran."
    )
    router_job_id: str | None = None

    @property
    def replacements(self) -> list[ReplicaJob]:
        return [job for job in self.jobs if job.replaces]

    @property
    def released(self) -> list[ReplicaJob]:
        return [job for job in self.jobs if job.outcome == "released"]

    @property
    def lost(self) -> list[ReplicaJob]:
        return [job for job in self.jobs if job.outcome == "lost"]
