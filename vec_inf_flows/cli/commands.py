"""One function per CLI command: call the client, then render a table or JSON."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vec_inf_flows.cli import render, replicas
from vec_inf_flows.cli.clients import client_for
from vec_inf_flows.compat import shapes
from vec_inf_flows.server_status import StatusResponse

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient

Overrides = Callable[[argparse.Namespace], dict[str, Any]]


class LazyConsole:
    """rich's Console, made on first use, so ``--json-mode`` never imports rich."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    @property
    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def dispatch(args: argparse.Namespace, overrides: Overrides) -> int:
    # In --json-mode stdout carries only JSON; progress and notes go to stderr.
    console = LazyConsole(stderr=bool(getattr(args, "json_mode", False)))
    if args.command == "run":
        from vec_inf_flows.cli.run import run_command

        return run_command(args, overrides(args), console)
    if args.command == "demo":
        from vec_inf_flows.cli.demo import run_demo

        return run_demo(args, console)
    handler = _HANDLERS[args.command]
    return handler(args, overrides, console)


_client = client_for


def _launch(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    if getattr(args, "replicas", None) is not None:
        return replicas.launch(args, overrides, console)
    from vec_inf_flows.cli.watch import launch_controls, wait_holding_lease

    client = _client(args)
    controls = launch_controls(args)
    options = overrides(args)
    options.update({key: getattr(args, key) for key in ("config", "strict") if getattr(args, key)})
    response = client.launch(args.model_name, **controls, **options)
    if args.json_mode:
        render.print_json(console, shapes.launch_json(response))
    else:
        render.show(render.launch_table(response))
    if args.wait:
        job_id, lapse = response.job_id, controls["lease"].lapse_after
        ready = wait_holding_lease(
            client, job_id, lapse, lambda: _wait_showing(client, job_id, args, console)
        )
        _print_status(console, ready, args.json_mode)
    return 0


def _wait_showing(
    client: VecInfClient, job_id: str, args: argparse.Namespace, console: LazyConsole
) -> StatusResponse:
    """Wait until READY; people see a spinner with the current status, machines see nothing."""
    if args.json_mode:
        return client.wait_until_ready(job_id, timeout=args.timeout)
    started = time.monotonic()
    with console.status(f"Waiting for job {job_id}") as spinner:

        def show(status: StatusResponse) -> None:
            why = status.pending_reason or status.detail or ""
            spinner.update(
                f"Job {job_id}: {status.server_status.value}"
                + (f" ({why})" if why else "")
                + f", {time.monotonic() - started:.0f} s"
            )

        return client.wait_until_ready(job_id, timeout=args.timeout, on_status=show)


def _batch_launch(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    shared = {key: getattr(args, key) for key in ("account", "work_dir") if getattr(args, key)}
    response = _client(args).batch_launch(args.model_names, args.batch_config, options=shared)
    if args.json_mode:
        render.print_json(console, shapes.batch_json(response))
    else:
        render.show(render.batch_table(response))
    return 0


def _print_status(console: LazyConsole, status: StatusResponse, json_mode: bool) -> None:
    if json_mode:
        render.print_json(console, shapes.status_json(status))
    else:
        render.show(render.status_table(status))


def _status(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    if replicas.has_group_ids(args.job_ids):
        return replicas.status(_client(args), args.job_ids, args.json_mode, console)
    client = _client(args)
    if len(args.job_ids) == 1:
        _print_status(console, client.status(args.job_ids[0]), args.json_mode)
        return 0
    statuses = client.statuses(args.job_ids or None)
    if args.json_mode:
        render.print_json(console, shapes.status_list_json(statuses))
    elif not statuses:
        console.print("No vec-inf-flows servers found.")
    else:
        render.show(render.status_list_table(statuses))
    return 0


def _metrics(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    from vec_inf_flows.cli.metrics import metrics_command

    return metrics_command(args, console)


def _cleanup(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    from vec_inf_flows.cli.cleanup import cleanup_command

    return cleanup_command(args, console)


def _shutdown(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    if replicas.has_group_ids(args.job_ids):
        return replicas.shutdown(_client(args), args.job_ids, args.json_mode, console)
    ids = _client(args).shutdown(
        args.job_ids, force=args.force, wait=args.wait, timeout=args.timeout
    )
    if args.json_mode:
        render.print_json(console, {"shutdown": ids})
    else:
        for job_id in ids:
            console.print(f"Shutting down model with Slurm Job ID: {job_id}")
    return 0


def _list(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    from vec_inf_flows.cli.listing import list_command

    return list_command(args, console)


def _wait(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    if replicas.has_group_ids([args.job_id]):
        return replicas.wait(_client(args), args, console)
    status = _wait_showing(_client(args), args.job_id, args, console)
    _print_status(console, status, args.json_mode)
    return 0


def _engine(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    from vec_inf_flows.engines.cpu import CpuEngine

    engine = CpuEngine.default()
    if args.action == "setup":
        if args.json_mode:
            engine.setup()
        else:
            with console.status("Setting up the CPU engine") as spinner:

                def report(message: str) -> None:
                    spinner.update(f"Setting up the CPU engine: {message}")
                    if not message.startswith("running"):
                        console.print(f"  {message}")

                engine.setup(report)
    described = engine.describe()
    if args.json_mode:
        render.print_json(console, described)
    else:
        rows = [
            (key, ", ".join(v) if isinstance(v, list) else str(v)) for key, v in described.items()
        ]
        render.show(render.key_value_table("CPU engine", rows))
    return 0 if described["ready"] else 1


_HANDLERS: dict[str, Callable[[argparse.Namespace, Overrides, LazyConsole], int]] = {
    "launch": _launch,
    "batch-launch": _batch_launch,
    "status": _status,
    "metrics": _metrics,
    "shutdown": _shutdown,
    "list": _list,
    "wait": _wait,
    "cleanup": _cleanup,
    "engine": _engine,
}
