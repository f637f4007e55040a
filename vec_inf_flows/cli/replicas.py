"""Replica groups on the command line: ``launch MODEL --replicas N``, and a group id accepted
by ``status``, ``wait`` and ``shutdown`` wherever a job id is.

Like the other plain commands this never imports Prefect.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vec_inf_flows.cli import render
from vec_inf_flows.cli.boxtable import Cell
from vec_inf_flows.cli.render import Table
from vec_inf_flows.errors import ConfigError

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.replicas import GroupRecord, GroupStatus, ReplicaGroup

Overrides = Callable[[argparse.Namespace], dict[str, Any]]


def has_group_ids(ids: Sequence[str]) -> bool:
    from vec_inf_flows.replicas.ids import is_group_id

    return any(is_group_id(value) for value in ids)


def _plan(args: argparse.Namespace, overrides: dict[str, Any], lease: Any = None) -> Any:
    from pydantic import ValidationError

    from vec_inf_flows.catalog.options import LaunchOptions
    from vec_inf_flows.replicas import ReplicaPlan, RouterSettings

    options = dict(overrides)
    api_key = options.pop("api_key", None)
    try:
        return ReplicaPlan(
            model_name=args.model_name,
            replicas=args.replicas,
            options=LaunchOptions.model_validate(options),
            api_key=api_key,
            max_gpus=args.max_gpus,
            max_concurrent=args.max_concurrent_replicas,
            router=RouterSettings(place=args.router, policy=args.router_policy),
            lease=lease,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        flag = {"replicas": "--replicas", "max_gpus": "--max-gpus"}.get(where, where)
        raise ConfigError(f"{flag}: {first.get('msg')}") from None


def launch(args: argparse.Namespace, overrides: Overrides, console: Any) -> int:
    from vec_inf_flows.cli.clients import client_for
    from vec_inf_flows.replicas import ReplicaGroup

    if args.replicas < 1:
        raise ConfigError(f"--replicas must be at least 1 (got {args.replicas}).")
    from vec_inf_flows.cli.watch import launch_controls

    lease = launch_controls(args)["lease"]  # held while --wait waits, as for one server
    group = ReplicaGroup.launch(client_for(args), _plan(args, overrides(args), lease))
    if args.json_mode:
        render.print_json(console, group.record.model_dump(mode="json"))
    else:
        render.show(launch_table(group.record))
    if args.wait:
        _print_status(console, _wait_holding_lease(group, args, console), args.json_mode)
    return 0


def _wait_holding_lease(group: ReplicaGroup, args: argparse.Namespace, console: Any) -> Any:
    """Wait while the client renews every member's lease; once usable, hand the group over to
    its time limit. Killed or failed meanwhile: the members stop once the lease lapses."""
    from vec_inf_flows.errors import ServerError

    try:
        usable = _wait_showing(group, args, console)
    except ServerError as error:
        lapse = group.plan.lease.lapse_after if group.plan.lease else 0
        raise ServerError(
            f"{error} Nobody renews the group's lease now: its jobs stop by themselves within "
            f"{lapse:g} s."
        ) from None
    group.release_leases()
    return usable


def status(client: VecInfClient, ids: Sequence[str], json_mode: bool, console: Any) -> int:
    from vec_inf_flows.replicas import ReplicaGroup, group_status
    from vec_inf_flows.replicas.ids import is_group_id

    answers: list[Any] = []
    for value in ids:
        if is_group_id(value):
            answers.append(group_status(ReplicaGroup.load(client, value)))
        else:
            answers.append(client.status(value))
    if json_mode:
        dumped = [answer.model_dump(mode="json") for answer in answers]
        render.print_json(console, dumped[0] if len(dumped) == 1 else dumped)
        return 0
    for answer in answers:
        if hasattr(answer, "group_id"):
            for table in status_tables(answer):
                render.show(table)
        else:
            render.show(render.status_table(answer))
    return 0


def shutdown(client: VecInfClient, ids: Sequence[str], json_mode: bool, console: Any) -> int:
    from vec_inf_flows.jobs import JobId
    from vec_inf_flows.replicas import ReplicaGroup
    from vec_inf_flows.replicas.ids import check_group_id, is_group_id

    # Every id is checked before anything is stopped.
    groups = [ReplicaGroup.load(client, check_group_id(v)) for v in ids if is_group_id(v)]
    jobs = [str(JobId.parse(v)) for v in ids if not is_group_id(v)]
    stopped: dict[str, list[str]] = {group.group_id: group.shutdown() for group in groups}
    if jobs:
        client.shutdown(jobs)
    if json_mode:
        render.print_json(console, {"shutdown": jobs, "groups": stopped})
        return 0
    for group_id, job_ids in stopped.items():
        shown = ", ".join(job_ids) if job_ids else "none were still running"
        console.print(f"Shutting down replica group {group_id} (Slurm Job IDs: {shown})")
    for job_id in jobs:
        console.print(f"Shutting down model with Slurm Job ID: {job_id}")
    return 0


def wait(client: VecInfClient, args: argparse.Namespace, console: Any) -> int:
    from vec_inf_flows.replicas import ReplicaGroup

    group = ReplicaGroup.load(client, args.job_id)
    _print_status(console, _wait_showing(group, args, console), args.json_mode)
    return 0


def _wait_showing(group: ReplicaGroup, args: argparse.Namespace, console: Any) -> GroupStatus:
    from vec_inf_flows.replicas.status import wait_until_usable

    if args.json_mode:
        return wait_until_usable(group, timeout=args.timeout)
    started = time.monotonic()
    with console.status(f"Waiting for replica group {group.group_id}") as spinner:

        def show(status: GroupStatus) -> None:
            counts = _counts(status)
            spinner.update(
                f"Replica group {group.group_id}: {status.group_status.value} ({counts}), "
                f"{time.monotonic() - started:.0f} s"
            )

        return wait_until_usable(group, timeout=args.timeout, on_status=show)


def _print_status(console: Any, status: GroupStatus, json_mode: bool) -> None:
    if json_mode:
        render.print_json(console, status.model_dump(mode="json"))
        return
    for table in status_tables(status):
        render.show(table)


# ---------------------------------------------------------------------- tables
def launch_table(record: GroupRecord) -> Table:
    from vec_inf_flows.presentation import group_launch_rows

    return render.key_value_table("Replica Group", group_launch_rows(record))


def _counts(status: GroupStatus) -> str:
    by_state: dict[str, int] = {}
    for replica in status.replicas:
        by_state[replica.server_status.value] = by_state.get(replica.server_status.value, 0) + 1
    return ", ".join(f"{count} {state}" for state, count in by_state.items()) or "no replica"


def status_tables(status: GroupStatus) -> list[Table]:
    style = render._STATUS_STYLE.get(status.group_status, "")
    rows: list[tuple[str, Cell]] = [
        ("Group ID", status.group_id),
        ("Model Name", status.model_name),
        ("Group Status", (status.group_status.value, style)),
        ("Replicas", f"{status.replicas_ready} READY of {status.replicas_wanted} wanted"),
    ]
    if status.router is not None:
        rows.append(("Endpoint", status.endpoint or "UNAVAILABLE"))
        if status.endpoint_workers is not None:
            rows.append(("Endpoint Workers", str(len(status.endpoint_workers))))
    if status.ended_because:
        rows.append(("Detail", status.ended_because))
    members = list(status.replicas) + ([status.router] if status.router else [])
    return [render.key_value_table("Replica Group", rows), render.status_list_table(members)]
