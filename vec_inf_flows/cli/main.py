"""``vec-inf-flows``: the classic commands plus ``run`` for flows.

Plain commands never import Prefect (``run`` does, lazily), so ``list`` and ``status`` start fast.
Every error a user can cause ends as one line on stderr and a non-zero exit, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; given the arguments about to be parsed, it leaves out the launch flags
    of commands that are not being parsed."""
    with_launch_flags = _launch_flags_needed(argv)
    add_launch_options = _add_launch_options if with_launch_flags else _no_launch_options
    parser = argparse.ArgumentParser(
        prog="vec-inf-flows",
        description="Launch OpenAI-compatible inference servers on Slurm; run pipelines on them.",
    )
    parser.add_argument("--version", action="version", version=f"vec-inf-flows {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json-mode", action="store_true", help="Print JSON instead of tables.")
        sub.add_argument(
            "--backend",
            choices=["auto", "slurm", "local"],
            help="Where jobs run (default: $VEC_INF_BACKEND, else Slurm when it answers, "
            "else local processes).",
        )
        return sub

    launch = command("launch", "Launch a model's inference server as a Slurm job.")
    launch.add_argument("model_name", metavar="MODEL")
    add_launch_options(launch)
    launch.add_argument("--wait", action="store_true", help="Wait until the server is READY.")
    launch.add_argument("--timeout", type=float, default=1800.0, help="Seconds --wait waits.")

    batch = command("batch-launch", "Launch several models as one heterogeneous Slurm job.")
    batch.add_argument("model_names", metavar="MODEL", nargs="+")
    batch.add_argument("--batch-config", help="A models YAML file used for this batch.")

    status = command("status", "Show a server's status, or all of your servers.")
    status.add_argument("job_ids", metavar="JOB_ID", nargs="*")

    metrics = command("metrics", "Show a READY server's performance metrics (live).")
    metrics.add_argument("job_id", metavar="JOB_ID")
    metrics.add_argument("--once", action="store_true", help="Print one snapshot and exit.")
    metrics.add_argument("--interval", type=float, default=2.0, help="Refresh interval (s).")

    shutdown = command("shutdown", "Shut servers down (cancel their Slurm jobs).")
    shutdown.add_argument("job_ids", metavar="JOB_ID", nargs="+")

    listing = command("list", "List the available models, or one model's configuration.")
    listing.add_argument("model_name", metavar="MODEL", nargs="?")

    wait = command("wait", "Wait until a server is READY (returns at once on FAILED/SHUTDOWN).")
    wait.add_argument("job_id", metavar="JOB_ID")
    wait.add_argument("--timeout", type=float, default=1800.0)

    engine = command("engine", "Set up a real inference engine on this machine.")
    engine.add_argument("action", choices=["setup", "status"])
    engine.add_argument("kind", nargs="?", default="cpu", choices=["cpu"])

    from vec_inf_flows.cli.demo import add_demo_command
    from vec_inf_flows.cli.run import add_run_command

    add_run_command(commands, add_launch_options)
    add_demo_command(commands)
    return parser


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


def main(argv: Sequence[str] | None = None) -> None:
    arguments = glue_dash_values(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    from vec_inf_flows.cli import commands

    try:
        code = commands.dispatch(args, _launch_overrides)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        code = 130
    except Exception as error:
        print(f"Error: {_one_line(error)}", file=sys.stderr)
        code = 1
    sys.exit(code)


def _one_line(error: BaseException) -> str:
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
