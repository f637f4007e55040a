"""A replica group on disk: ``group.json`` in the group's directory, and its index entry.

The group directory lives in the log tree (``<log_dir>/replica-groups/<group id>/``), where the
jobs can read it: the router job follows ``group.json`` to learn which replicas to serve. The
index (``$VEC_INF_FLOWS_HOME/.groups/<group id>``, a symlink like the job index) lets
``status`` and ``shutdown`` find a group by its id alone. The file is rewritten atomically by
the one process that provisions or watches the group; everyone else only reads it.
"""

from __future__ import annotations

import os
import time
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vec_inf_flows import jobdir
from vec_inf_flows.errors import JobNotFoundError
from vec_inf_flows.replicas.ids import check_group_id

GROUP_INDEX_DIR = ".groups"
GROUP_FILE = "group.json"
GROUPS_SUBDIR = "replica-groups"
GROUP_LABEL = "replica_group"  # the label every member's job JSON carries


class Role(StrEnum):
    REPLICA = "replica"
    ROUTER = "router"


class Member(BaseModel):
    """One job of the group."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    role: Role = Role.REPLICA
    backend: str = "slurm"  # which backend runs it: the router may run locally
    job_dir: str
    replaces: str | None = None  # the replica this one was launched to replace
    launched_at: float = Field(default_factory=time.time)


class GroupRecord(BaseModel):
    """What the group is and which jobs belong to it (including ended ones)."""

    group_id: str
    model_name: str
    replicas: int  # how many replicas the group aims to keep running
    directory: str
    members: list[Member] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    ended_because: str | None = None

    @property
    def replica_members(self) -> list[Member]:
        return [member for member in self.members if member.role is Role.REPLICA]

    @property
    def router(self) -> Member | None:
        routers = [member for member in self.members if member.role is Role.ROUTER]
        return routers[-1] if routers else None

    @property
    def path(self) -> Path:
        return Path(self.directory) / GROUP_FILE

    def save(self) -> None:
        jobdir.atomic_write(self.path, self.model_dump_json(indent=2) + "\n")


def group_directory(log_dir: str | Path, group_id: str) -> Path:
    return Path(log_dir) / GROUPS_SUBDIR / group_id


def index_link(state_dir: str | Path, group_id: str) -> Path:
    return Path(state_dir) / GROUP_INDEX_DIR / group_id


def register(state_dir: str | Path, record: GroupRecord) -> None:
    """Point ``$state/.groups/<id>`` at the group directory."""
    link = index_link(state_dir, record.group_id)
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = link.with_name(f".{record.group_id}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(record.directory, link.parent))
    os.replace(tmp, link)


def read_record(path: str | Path) -> GroupRecord | None:
    """The record at ``path``, or None if it is missing or half-written by another tool."""
    try:
        return GroupRecord.model_validate_json(Path(path).read_text())
    except (OSError, ValueError):
        return None


def load(state_dir: str | Path, group_id: str) -> GroupRecord:
    gid = check_group_id(group_id)
    link = index_link(state_dir, gid)
    record = read_record(link / GROUP_FILE)
    if record is None:
        raise JobNotFoundError(
            f"Replica group {gid} is unknown: no group record names it (looked in {link})."
        )
    return record
