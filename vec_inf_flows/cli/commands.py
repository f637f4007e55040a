"""One function per CLI command: call the client, then render a table or JSON."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from vec_inf_flows.cli import render
from vec_inf_flows.client import VecInfClient
from vec_inf_flows.models import MetricsResponse, StatusResponse

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


def _client(args: argparse.Namespace) -> VecInfClient:
    """The client for ``--backend`` (default: ``$VEC_INF_BACKEND``, else detected)."""
    return VecInfClient(backend=getattr(args, "backend", None))


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


def _launch(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    client = _client(args)
    response = client.launch(args.model_name, **overrides(args))
    if args.json_mode:
        render.print_json(console, response.model_dump())
    else:
        console.print(render.launch_table(response))
    if args.wait:
        _print_status(
            console, _wait_showing(client, response.job_id, args, console), args.json_mode
        )
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
    response = _client(args).batch_launch(args.model_names, args.batch_config)
    if args.json_mode:
        render.print_json(console, response.model_dump())
    else:
        console.print(render.batch_table(response))
    return 0


def _print_status(console: LazyConsole, status: StatusResponse, json_mode: bool) -> None:
    if json_mode:
        render.print_json(console, status.model_dump(mode="json"))
    else:
        console.print(render.status_table(status))


def _status(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    client = _client(args)
    if len(args.job_ids) == 1:
        _print_status(console, client.status(args.job_ids[0]), args.json_mode)
        return 0
    statuses = client.statuses(args.job_ids or None)
    if args.json_mode:
        render.print_json(console, [status.model_dump(mode="json") for status in statuses])
    elif not statuses:
        console.print("No vec-inf-flows servers found.")
    else:
        console.print(render.status_list_table(statuses))
    return 0


def _metrics(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    from vec_inf_flows.server.metrics import metrics_rows

    client = _client(args)
    current = client.metrics(args.job_id)
    if args.once:
        _print_metrics(console, current, args.json_mode)
        return 0
    if args.json_mode:  # one JSON object per line, for machines that follow along
        try:
            while True:
                _print_metrics(console, current, True)
                time.sleep(args.interval)
                current = client.metrics(args.job_id, previous=current)
        except KeyboardInterrupt:
            return 0
    from rich.live import Live

    title = f"Metric ({current.model_name}, job {current.job_id})"
    table = render.metrics_table(metrics_rows(current.metrics), title)
    with Live(table, console=console.real) as live:
        try:
            while True:
                time.sleep(args.interval)
                current = client.metrics(args.job_id, previous=current)
                live.update(render.metrics_table(metrics_rows(current.metrics), title))
        except KeyboardInterrupt:
            pass
    return 0


def _print_metrics(console: LazyConsole, response: MetricsResponse, json_mode: bool) -> None:
    from vec_inf_flows.server.metrics import metrics_rows

    if json_mode:
        print(
            response.model_dump_json(include={"job_id", "model_name", "base_url", "timestamp"})[:-1]
            + ',"metrics":'
            + response.metrics.model_dump_json()
            + "}"
        )
    else:
        console.print(render.metrics_table(metrics_rows(response.metrics)))


def _shutdown(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    ids = _client(args).shutdown(args.job_ids)
    if args.json_mode:
        render.print_json(console, {"shutdown": ids})
    else:
        for job_id in ids:
            console.print(f"Shutting down model with Slurm Job ID: {job_id}")
    return 0


def _list(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
    client = _client(args)
    if args.model_name:
        dumped = client.model_config(args.model_name)
        if args.json_mode:
            render.print_json(console, {"model_name": args.model_name, **dumped})
        else:
            rows = render.model_config_rows(args.model_name, dumped)
            console.print(render.key_value_table("Model Config", rows))
        return 0
    models = client.list_models()
    if args.json_mode:
        render.print_json(console, [info.name for info in models])
    else:
        console.print(render.models_table(models))
    return 0


def _wait(args: argparse.Namespace, overrides: Overrides, console: LazyConsole) -> int:
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
        console.print(render.key_value_table("CPU engine", rows))
    return 0 if described["ready"] else 1


_HANDLERS: dict[str, Callable[[argparse.Namespace, Overrides, LazyConsole], int]] = {
    "launch": _launch,
    "batch-launch": _batch_launch,
    "status": _status,
    "metrics": _metrics,
    "shutdown": _shutdown,
    "list": _list,
    "wait": _wait,
    "engine": _engine,
}
