"""``vec-inf-flows``: the classic commands plus ``run`` for flows.

Plain commands never import Prefect (``run`` does, lazily), so ``list`` and ``status`` start fast.
Every error a user can cause ends as one line on stderr and a non-zero exit, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from vec_inf_flows import __version__


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    """One flag per declared launch option (``catalog.option_declaration``, no pydantic),
    with the anchor's flag names so its users' habits carry over."""
    from vec_inf_flows.catalog.option_declaration import declared_options

    group = parser.add_argument_group("launch options")
    for declared in declared_options():
        option = declared.option
        if not option.flags:
            continue
        extra: dict[str, Any] = {"type": int} if declared.value_type is int else {}
        if option.choices:
            extra["choices"] = list(option.choices)
        group.add_argument(
            *option.flags, dest=declared.name, default=None, help=option.description, **extra
        )
    group.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="Name of an environment variable holding the server's API key "
        "(VEC_INF_API_KEY is read by default); the key never reaches logs, JSON or the script.",
    )


def _add_watch_options(parser: argparse.ArgumentParser) -> None:
    """What the job side enforces on its own (see "Leases" in the README)."""
    group = parser.add_argument_group("server watch")
    group.add_argument(
        "--idle-timeout",
        type=float,
        metavar="MINUTES",
        help="Stop the server after this many minutes without requests (read from the "
        "engine's own request counters).",
    )
    group.add_argument(
        "--health-grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="A READY server that does not answer /health for this long is FAILED (default 60).",
    )
    group.add_argument(
        "--lease-renew",
        type=float,
        metavar="SECONDS",
        help="With --wait: how often the lease is renewed (default 60).",
    )
    group.add_argument(
        "--lease-lapse",
        type=float,
        metavar="SECONDS",
        help="With --wait: the job stops after this long without a renewal (default 300).",
    )


def _no_launch_options(parser: argparse.ArgumentParser) -> None:
    """Stands in for ``_add_launch_options`` while another command is parsed."""


def _launch_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from vec_inf_flows.catalog.option_declaration import declared_options

    overrides: dict[str, Any] = {}
    for declared in declared_options():
        value = getattr(args, declared.name, None) if declared.option.flags else None
        if value is not None:
            overrides[declared.name] = value
    key_var = getattr(args, "api_key_env", None) or "VEC_INF_API_KEY"
    key = os.environ.get(key_var)
    if getattr(args, "api_key_env", None) and not key:
        from vec_inf_flows.errors import ConfigError

        raise ConfigError(f"--api-key-env {key_var}: that environment variable is not set.")
    if key:
        overrides["api_key"] = key
    return overrides


Builder = Callable[[argparse.ArgumentParser], None]


def _launch_command(launch: argparse.ArgumentParser) -> None:
    launch.add_argument("model_name", metavar="MODEL")
    _add_launch_options(launch)
    launch.add_argument(
        "--config",
        metavar="FILE",
        help="A models YAML file merged over the catalog for this launch (vec-inf's --config).",
    )
    launch.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="Make pre-submit warnings (missing weights) errors.",
    )
    launch.add_argument(
        "--wait",
        action="store_true",
        help="Wait until the server is READY, holding a lease meanwhile: if this command is "
        "killed or interrupted while it waits, the job stops by itself once the lease lapses. "
        "Once READY the server lives to its time limit, as without --wait.",
    )
    launch.add_argument("--timeout", type=float, default=1800.0, help="Seconds --wait waits.")
    _add_watch_options(launch)
    from vec_inf_flows.cli.replica_flags import add_replica_options

    add_replica_options(launch)


def _batch_command(batch: argparse.ArgumentParser) -> None:
    batch.add_argument("model_names", metavar="MODEL", nargs="+")
    batch.add_argument("--batch-config", help="A models YAML file used for this batch.")
    batch.add_argument("-A", "--account", help="Slurm account for every server of the batch.")
    batch.add_argument("-D", "--work-dir", help="Working directory of the batch job.")


def _status_command(status: argparse.ArgumentParser) -> None:
    status.add_argument("job_ids", metavar="JOB_ID", nargs="*", help="Job ids or group ids.")


def _metrics_command(metrics: argparse.ArgumentParser) -> None:
    metrics.add_argument("job_id", metavar="JOB_ID")
    metrics.add_argument("--once", action="store_true", help="Print one snapshot and exit.")
    metrics.add_argument("--interval", type=float, default=2.0, help="Refresh interval (s).")


def _shutdown_command(shutdown: argparse.ArgumentParser) -> None:
    shutdown.add_argument("job_ids", metavar="JOB_ID", nargs="+", help="Job ids or group ids.")
    shutdown.add_argument(
        "--force", action="store_true", help="Also cancel jobs vec-inf-flows did not launch."
    )
    shutdown.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="Return once the cancel is sent, not once Slurm runs no part of the job.",
    )
    shutdown.add_argument(
        "--timeout", type=float, default=120.0, help="Seconds to wait for the job to end."
    )


def _list_command(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("model_name", metavar="MODEL", nargs="?")


def _wait_command(wait: argparse.ArgumentParser) -> None:
    wait.add_argument("job_id", metavar="JOB_ID", help="A job id, or a group id (first READY).")
    wait.add_argument("--timeout", type=float, default=1800.0)


def _engine_command(engine: argparse.ArgumentParser) -> None:
    engine.add_argument("action", choices=["setup", "status"])
    engine.add_argument("kind", nargs="?", default="cpu", choices=["cpu"])


def _cleanup_command(cleanup: argparse.ArgumentParser) -> None:
    cleanup.add_argument("--log-dir", help="Root of the log tree (default ~/.vec-inf-logs).")
    cleanup.add_argument("--model-family", help="Only this model family's log folders.")
    cleanup.add_argument("--model-name", help="Only this model's log folders.")
    cleanup.add_argument("--job-id", type=int, help="Only the folder of this job id.")
    cleanup.add_argument(
        "--before-job-id", type=int, help="Only folders of job ids below this one."
    )
    cleanup.add_argument(
        "--dry-run", action="store_true", help="List what would be deleted; delete nothing."
    )


# The plain commands, in help order: (help text, builder).
_COMMANDS: dict[str, tuple[str, Builder]] = {
    "launch": ("Launch a model's inference server as a Slurm job.", _launch_command),
    "batch-launch": ("Launch several models as one heterogeneous Slurm job.", _batch_command),
    "status": ("Show a server's status, or all of your servers.", _status_command),
    "metrics": ("Show a server's performance metrics (live).", _metrics_command),
    "shutdown": ("Shut servers down (cancel their Slurm jobs).", _shutdown_command),
    "list": ("List the available models, or one model's configuration.", _list_command),
    "wait": ("Wait until a server is READY (returns at once on FAILED/SHUTDOWN).", _wait_command),
    "cleanup": (
        "Delete old log folders (vec-inf's cleanup; folders of live jobs are kept).",
        _cleanup_command,
    ),
    "engine": ("Set up a real inference engine on this machine.", _engine_command),
}


# The commands that take launch flags; only when one of them is parsed are the flags built.
_LAUNCHING = frozenset({"launch", "run"})


def _launch_flags_needed(argv: Sequence[str] | None) -> bool:
    """Whether the command being parsed takes launch flags (all commands when ``argv`` is None).

    ``--help``, ``list`` and ``status`` do not: they skip evaluating the options' declaration.
    """
    if argv is None:
        return True
    command = next((item for item in argv if not item.startswith("-")), None)
    return command in _LAUNCHING


def build_parser(only: str | None = None, *, launch_flags: bool = True) -> argparse.ArgumentParser:
    """The CLI's parser; ``only`` builds just that plain command (what a command line needs,
    at a fraction of the start-up cost of building all of them), and without ``launch_flags``
    the commands that take launch options are listed but not built (the line parses another).
    """
    add_launch_options = _add_launch_options if launch_flags else _no_launch_options
    parser = argparse.ArgumentParser(
        prog="vec-inf-flows",
        description="Launch OpenAI-compatible inference servers on Slurm; run pipelines on them.",
    )
    parser.add_argument("--version", action="version", version=f"vec-inf-flows {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, build) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json-mode", action="store_true", help="Print JSON instead of tables.")
        sub.add_argument(
            "--backend",
            choices=["auto", "slurm", "local"],
            help="Where jobs run (default: $VEC_INF_BACKEND, else Slurm when it answers, "
            "else local processes).",
        )
        if name == "launch" and not launch_flags:
            continue  # listed for --help; the line being parsed is another command's
        build(sub)
    if only is None:
        from vec_inf_flows.cli.demo import add_demo_command
        from vec_inf_flows.cli.run import add_run_command

        add_run_command(commands, add_launch_options)
        add_demo_command(commands)
    return parser


def parser_for(line: Sequence[str]) -> argparse.ArgumentParser:
    """The parser a command line needs: only its plain command, and launch flags only for the
    commands that take them."""
    return build_parser(_requested_command(line), launch_flags=_launch_flags_needed(line))


def _requested_command(argv: Sequence[str]) -> str | None:
    """The plain command named on the line, if any (options never precede it)."""
    first = next((item for item in argv if not item.startswith("-")), None)
    return first if first in _COMMANDS and argv and argv[0] == first else None


# Their values start with "--" ("--max-model-len=65536,..."), which argparse would take for
# an option; gluing "--vllm-args VALUE" into "--vllm-args=VALUE" keeps the guide's syntax.
_DASH_VALUED = ("--vllm-args", "--sglang-args")


def glue_dash_values(argv: Sequence[str]) -> list[str]:
    glued: list[str] = []
    items = iter(argv)
    for item in items:
        if item in _DASH_VALUED:
            value = next(items, None)
            glued.append(item if value is None else f"{item}={value}")
        else:
            glued.append(item)
    return glued


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning is one line for a person, not a source location."""
    print(f"Warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    import warnings

    warnings.showwarning = _show_warning
    line = glue_dash_values(sys.argv[1:] if argv is None else argv)
    args = parser_for(line).parse_args(line)
    from vec_inf_flows.cli import commands

    try:
        code = commands.dispatch(args, _launch_overrides)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader left (``| head``): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as error:
        print(f"Error: {_one_line(error)}", file=sys.stderr)
        code = 1
    sys.exit(code)


# A message that quotes a user's value is cut there already; this bounds everything else.
MESSAGE_LIMIT = 2000


def _one_line(error: BaseException) -> str:
    text = _message(error)
    if len(text) > MESSAGE_LIMIT:
        text = f"{text[:MESSAGE_LIMIT]}... ({len(text)} characters)"
    return text


def _message(error: BaseException) -> str:
    from vec_inf_flows.errors import VecInfError

    if isinstance(error, VecInfError):
        return str(error)
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover
        ValidationError = ()  # type: ignore[assignment,misc]
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"invalid {where}: {first.get('msg')}" if where else str(first.get("msg"))
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


if __name__ == "__main__":  # pragma: no cover
    main()
