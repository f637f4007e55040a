"""``metrics JOB``: a live table, refreshed every ``--interval`` seconds.

A server that is not READY yet has no metrics; like vec-inf, the command keeps polling and
says why (PENDING and its reason, LAUNCHING and what it waits for) until the server answers,
then shows its numbers. A server that FAILED or was SHUT DOWN will never have any: that ends
the command with one line and exit 1. ``--once`` prints one snapshot, so it exits 1 when
there is nothing to show yet.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vec_inf_flows.cli import render
from vec_inf_flows.errors import ServerError

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.models import MetricsResponse
    from vec_inf_flows.server_status import StatusResponse


@dataclass(frozen=True)
class Waiting:
    """No metrics yet, and why."""

    status: StatusResponse
    why: str


Frame = Waiting | Any  # Any: a MetricsResponse (pydantic; imported only once there is one)


def frames(client: VecInfClient, job_id: str, interval: float) -> Iterator[Frame]:
    """Metrics snapshots (rates over the last interval) or, before READY, why there are none."""
    previous: MetricsResponse | None = None
    while True:
        status = client.status(job_id)
        if status.terminal:
            reason = status.failed_reason or status.detail or "no reason recorded"
            raise ServerError(
                f"Server {status.job_id} ({status.model_name}) is {status.server_status.value}:"
                f" {reason}; it has no metrics."
            )
        if status.base_url is None:
            yield Waiting(status, _why(status))
        else:
            try:
                previous = client.metrics(job_id, previous=previous)
            except ServerError as error:  # not READY any more, or /metrics not answering
                yield Waiting(status, str(error))
            else:
                yield previous
        time.sleep(interval)


def _why(status: StatusResponse) -> str:
    state = status.server_status.value
    reason = status.pending_reason or status.detail
    return f"{state}{f' ({reason})' if reason else ''}: no metrics until the server is READY"


def metrics_command(args: argparse.Namespace, console: Any) -> int:
    from vec_inf_flows.cli.clients import client_for

    stream = frames(client_for(args), args.job_id, args.interval)
    if args.once:
        frame = next(stream)
        if isinstance(frame, Waiting):
            raise ServerError(f"Server {frame.status.job_id}: {frame.why}.")
        _print(console, frame, args.json_mode)
        return 0
    try:
        if args.json_mode:  # one JSON object per line, for machines that follow along
            for frame in stream:
                _print(console, frame, True)
        else:
            _live(console, stream)
    except KeyboardInterrupt:
        pass
    return 0


def _live(console: Any, stream: Iterator[Frame]) -> None:
    from rich.live import Live

    with Live(_table(next(stream)), console=console.real) as live:
        for frame in stream:
            live.update(_table(frame))


def _table(frame: Frame) -> Any:
    from vec_inf_flows.server.metrics import metrics_rows

    if isinstance(frame, Waiting):
        title = f"Metric ({frame.status.model_name}, job {frame.status.job_id})"
        return render.metrics_table([("Status", frame.why)], title)
    title = f"Metric ({frame.model_name}, job {frame.job_id})"
    return render.metrics_table(metrics_rows(frame.metrics), title)


def _print(console: Any, frame: Frame, json_mode: bool) -> None:
    if isinstance(frame, Waiting):
        status = frame.status
        waiting = {
            "job_id": status.job_id,
            "model_name": status.model_name,
            "model_status": status.server_status.value,
            "metrics": None,
            "detail": frame.why,
        }
        render.print_json(console, waiting)
    elif json_mode:
        print(
            frame.model_dump_json(include={"job_id", "model_name", "base_url", "timestamp"})[:-1]
            + ',"model_status":"READY","metrics":'
            + frame.metrics.model_dump_json()
            + "}",
            flush=True,
        )
    else:
        render.show(_table(frame))
