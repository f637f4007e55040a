"""How a flow serves each model: one server, or a group of replicas (its flow parameters).

Plain and Prefect-free, so ``vec-inf-flows run`` refuses a combination that cannot work in one
line before Prefect starts, with the same rule the flow applies at its first line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vec_inf_flows.errors import ConfigError

RouterChoice = Literal["none", "job", "local"]


@dataclass(frozen=True)
class Scale:
    """How a flow serves each model: one server, or a group of replicas (the flow parameters
    ``replicas``, ``router``, ``elastic``, ``relaunches``, ``max_gpus``,
    ``max_concurrent_replicas``)."""

    replicas: int = 1
    router: RouterChoice = "none"
    elastic: bool = False
    relaunches: int | None = None  # None: one replacement per replica
    max_gpus: int | None = None  # this group's budget (evaluate shares one across models)
    max_concurrent: int | None = None

    @property
    def grouped(self) -> bool:
        return self.replicas > 1 or self.router != "none" or self.elastic

    def check(self, workload: object = None, job_id: str | None = None) -> None:
        """Refuse combinations that cannot work, before anything is launched."""
        limits = (
            ("replicas", self.replicas),
            ("max_gpus", self.max_gpus),
            ("max_concurrent_replicas", self.max_concurrent),
        )
        for name, value in limits:
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1 (got {value}).")
        if not self.grouped:
            return
        if job_id is not None:
            raise ConfigError("Attaching to a job (job_id) cannot be combined with replicas.")
        if workload is not None and self.router == "none":
            raise ConfigError(
                "A workload callable talks to one URL: with replicas it needs the router "
                "(router='job' or 'local'), whose endpoint it then gets."
            )

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> Scale:
        """From a flow's parameters (missing ones take the flow's defaults)."""
        return cls(
            replicas=parameters.get("replicas", 1),
            router=parameters.get("router") or "none",
            elastic=bool(parameters.get("elastic")),
            max_gpus=parameters.get("max_gpus"),
            max_concurrent=parameters.get("max_concurrent_replicas"),
        )
