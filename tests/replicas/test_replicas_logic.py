"""The pure parts of replica groups: budget, router membership, the router's script, records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vec_inf_flows.errors import ConfigError, JobNotFoundError
from vec_inf_flows.models import ServerStatus, StatusResponse
from vec_inf_flows.replicas import GpuBudget, GroupRecord, Member, Role, is_group_id
from vec_inf_flows.replicas import record as records
from vec_inf_flows.replicas.budget import SharedBudget
from vec_inf_flows.replicas.elastic import Backlog, ElasticPolicy
from vec_inf_flows.replicas.ids import new_group_id
from vec_inf_flows.replicas.membership import MembershipTracker, Observation, worker_url
from vec_inf_flows.replicas.status import overall
from vec_inf_flows.scripts.router import RouterSpec, render_router_script
from vec_inf_flows.spec import SlurmResources


@pytest.mark.parametrize(
    ("budget", "active", "gpus", "room"),
    [
        (GpuBudget(), 0, 4, 1 << 30),  # no budget: as many as asked
        (GpuBudget(max_gpus=8), 0, 2, 4),
        (GpuBudget(max_gpus=8), 3, 2, 1),
        (GpuBudget(max_gpus=8), 5, 2, 0),
        (GpuBudget(max_replicas=3), 1, 0, 2),
        (GpuBudget(max_gpus=4, max_replicas=3), 0, 1, 3),  # the tighter bound wins
        (GpuBudget(max_gpus=4), 7, 0, 1 << 30),  # CPU replicas use no GPU budget
    ],
)
def test_budget_room(budget: GpuBudget, active: int, gpus: int, room: int) -> None:
    assert budget.room(active, gpus) == room


def test_budget_refuses_what_can_never_run() -> None:
    with pytest.raises(ConfigError, match="needs 4 GPUs but the budget allows 2"):
        GpuBudget(max_gpus=2).check(4)
    with pytest.raises(ConfigError, match="at least 1"):
        GpuBudget(max_replicas=0)


def obs(job: str, url: str | None, ended: bool = False) -> Observation:
    return Observation(job, url, ended)


def test_membership_adds_healthy_drops_dead_and_foreign() -> None:
    tracker = MembershipTracker(drop_after=2)
    a, b, c = "http://n1:1", "http://n1:2", "http://n2:3"
    group = [obs("1", a), obs("2", b), obs("3", None)]  # 3 has no port yet
    assert tracker.to_probe(group) == [a, b]
    first = tracker.decide(group, {a: True, b: False}, current=["http://evil:9"])
    assert (first.add, first.remove) == ([a], ["http://evil:9"])
    # b never answered: not added; a misses one probe: kept (one slow answer is not death)
    second = tracker.decide(group, {a: False, b: True}, current=[a])
    assert (second.add, second.remove) == ([b], [])
    third = tracker.decide(group, {a: False, b: True}, current=[a, b])
    assert (third.add, third.remove) == ([], [a])
    # an engine that exited (or a shutdown) leaves at once, whatever its last probe said
    ended = [obs("1", a), obs("2", b, ended=True), obs("3", c)]
    fourth = tracker.decide(ended, {a: True, b: True, c: True}, current=[b])
    assert (fourth.add, fourth.remove) == ([a, c], [b])


def test_worker_url_is_the_server_root() -> None:
    assert worker_url("http://node1:4321/v1") == "http://node1:4321"
    assert worker_url("http://node1:4321/v1/") == "http://node1:4321"


def status(job: str, state: ServerStatus) -> StatusResponse:
    return StatusResponse(job_id=job, model_name="m", server_status=state)


READY, PENDING, FAILED = ServerStatus.READY, ServerStatus.PENDING, ServerStatus.FAILED
LAUNCHING, SHUTDOWN = ServerStatus.LAUNCHING, ServerStatus.SHUTDOWN


@pytest.mark.parametrize(
    ("replicas", "router", "ended", "expected"),
    [
        ([READY, PENDING], None, False, READY),  # one READY is enough: never wait for all
        ([READY, PENDING], READY, False, READY),
        ([READY], LAUNCHING, False, LAUNCHING),  # no endpoint yet
        ([READY], FAILED, False, FAILED),  # the endpoint was asked for and is gone
        ([PENDING, PENDING], None, False, PENDING),
        ([FAILED, LAUNCHING], None, False, LAUNCHING),
        ([FAILED, FAILED], None, False, FAILED),
        ([READY, READY], READY, True, SHUTDOWN),
    ],
)
def test_group_state(
    replicas: list[ServerStatus], router: ServerStatus | None, ended: bool, expected: ServerStatus
) -> None:
    members = [status(str(n), state) for n, state in enumerate(replicas)]
    router_status = status("99", router) if router else None
    assert overall(members, router_status, ended=ended) is expected


def test_router_script_is_valid_bash_and_quotes_everything(tmp_path: Path) -> None:
    odd = tmp_path / "logs; rm -rf ~ $(x) 100%"
    spec = RouterSpec(
        group_id="group-0123abcd",
        group_dir=str(odd / "replica-groups" / "group-0123abcd"),
        resources=SlurmResources(
            time="01:00:00", cpus_per_task=1, mem_per_node="1G", partition="debug"
        ),
        python="/opt/my venv/bin/python",
        venv="/opt/my venv",
    )
    script = render_router_script(spec, "m-router-vec-inf-0123abcd")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=1G" in script
    assert "#SBATCH --partition=debug" in script
    assert "gres" not in script  # the router needs no GPU
    # '%' in a path would be a Slurm filename pattern: escaped in the directives only
    assert '#SBATCH --output="' in script and "100%%/replica-groups" in script
    assert "'/opt/my venv/bin/python'" in script and "source '/opt/my venv/bin/activate'" in script
    assert "--port '{port}'" in script
    assert "api-key" not in script.lower()  # the router never holds a key


def test_router_script_refuses_control_characters() -> None:
    spec = RouterSpec(
        group_id="group-0123abcd",
        group_dir="/logs/x\n#SBATCH --wrap=evil",
        resources=SlurmResources(time="01:00:00"),
        python="python3",
    )
    with pytest.raises(ConfigError, match="newline"):
        render_router_script(spec, "job")


def test_group_record_round_trip_and_index(tmp_path: Path) -> None:
    gid = new_group_id()
    assert is_group_id(gid) and not is_group_id("123") and not is_group_id("group-xyz")
    record = GroupRecord(
        group_id=gid,
        model_name="m",
        replicas=2,
        directory=str(records.group_directory(tmp_path / "logs", gid)),
        members=[Member(job_id="7", job_dir="/d/m.7"), Member(job_id="9", job_dir="/d/m.9")],
    )
    record.members.append(Member(job_id="11", role=Role.ROUTER, backend="local", job_dir="/r"))
    record.save()
    records.register(tmp_path / "state", record)
    loaded = records.load(tmp_path / "state", gid)
    assert [m.job_id for m in loaded.replica_members] == ["7", "9"]
    assert loaded.router is not None and loaded.router.backend == "local"
    assert oct(record.path.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(JobNotFoundError, match="group-00000000 is unknown"):
        records.load(tmp_path / "state", "group-00000000")
    with pytest.raises(ConfigError, match="Invalid group id"):
        records.load(tmp_path / "state", "../../etc")


@pytest.mark.parametrize(
    ("backlog", "window", "most", "wanted"),
    [
        (10_000, 10, 4, 4),  # a deep backlog: every replica allowed
        (60, 10, 4, 3),  # two full windows of work each for three
        (20, 10, 4, 1),
        (0, 10, 4, 1),  # never below the minimum, even with nothing left
        (5, 10, 1, 1),
    ],
)
def test_elastic_wants_what_the_backlog_keeps_busy(
    backlog: int, window: int, most: int, wanted: int
) -> None:
    assert ElasticPolicy().wanted(backlog, window, most) == wanted


def test_elastic_policy_refuses_nonsense() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        ElasticPolicy(min_replicas=0)


def test_backlog_counts_what_is_left_across_datasets() -> None:
    backlog = Backlog()
    assert backlog.remaining() is None  # nothing announced: the group keeps its size
    backlog.expect("a", 100)
    backlog.expect("b", 50)
    backlog.progress("a", 30, 100)
    assert backlog.remaining() == 120
    backlog.expect("a", 100)  # announcing again does not forget the progress
    backlog.progress("a", 100, 100)
    assert backlog.remaining() == 50


def test_a_shared_budget_holds_across_groups() -> None:
    shared = SharedBudget(max_gpus=4, max_replicas=3)
    assert shared.claim("g1", 0, 1) and shared.claim("g1", 1, 1)
    assert shared.claim("g2", 0, 1)
    assert not shared.claim("g2", 1, 1)  # three replicas held: the fourth waits
    shared.settle("g1", 1, 1)  # one of g1's ended
    assert shared.claim("g2", 1, 1)
    assert shared.held() == (3, 3)
    shared.forget("g1")
    assert shared.held() == (2, 2)
    two_gpus = SharedBudget(max_gpus=4)
    assert two_gpus.claim("g", 0, 2) and two_gpus.claim("g", 1, 2)
    assert not two_gpus.claim("h", 0, 1)  # all four GPUs taken
