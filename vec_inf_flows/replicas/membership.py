"""Which replicas the router should send traffic to (decided job-side, by the router job).

Each round the router job reads the group record and each replica's job directory (its address,
whether its engine exited or a shutdown was asked for) and probes ``/health``. A replica joins
once it answers; it leaves when its engine ended, when shutdown was asked, or after
``drop_after`` failed probes in a row (one slow answer under load must not drop a busy server).
Workers nobody in the group launched are removed at once: the router's admin endpoints have no
authentication, so anyone who can reach it could add a server of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vec_inf_flows import jobdir
from vec_inf_flows.jobdir import JobPaths
from vec_inf_flows.replicas.record import GroupRecord, Member


@dataclass(frozen=True)
class Observation:
    """One replica as seen from its job directory (and a health probe)."""

    job_id: str
    worker_url: str | None  # http://host:port, without /v1; None until the job has a port
    ended: bool  # the engine exited or a shutdown was asked for


def worker_url(server_address: str) -> str:
    """The router wants the server root: ``http://node1:4321/v1`` -> ``http://node1:4321``."""
    url = server_address.rstrip("/")
    return url.removesuffix("/v1")


def observe(member: Member) -> Observation:
    directory = Path(member.job_dir)
    paths = JobPaths(directory, directory.name)
    config = jobdir.read_json(paths.json) or {}
    address = config.get("server_address")
    ended = paths.exit_marker.exists() or paths.shutdown_marker.exists()
    return Observation(member.job_id, worker_url(address) if address else None, ended)


def observe_group(record: GroupRecord) -> list[Observation]:
    return [observe(member) for member in record.replica_members]


@dataclass(frozen=True)
class Changes:
    add: list[str]
    remove: list[str]


@dataclass
class MembershipTracker:
    """Counts failed probes per worker across rounds and decides the router's changes."""

    drop_after: int = 3
    failures: dict[str, int] = field(default_factory=dict)

    def to_probe(self, observations: Iterable[Observation]) -> list[str]:
        return [o.worker_url for o in observations if o.worker_url and not o.ended]

    def decide(
        self,
        observations: Iterable[Observation],
        healthy: dict[str, bool],
        current: Iterable[str],
    ) -> Changes:
        """What to add to and remove from the router, given this round's probes."""
        observed = list(observations)
        ours = {o.worker_url for o in observed if o.worker_url}
        ended = {o.worker_url for o in observed if o.worker_url and o.ended}
        serving = set(current)
        wanted: set[str] = set()
        for url in ours - ended:
            if healthy.get(url, False):
                self.failures[url] = 0
                wanted.add(url)
                continue
            self.failures[url] = self.failures.get(url, 0) + 1
            if url in serving and self.failures[url] < self.drop_after:
                wanted.add(url)  # keep it a little longer: one slow probe is not death
        return Changes(add=sorted(wanted - serving), remove=sorted(serving - wanted))
