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

# Launch options, with the anchor's flag names so its users' habits carry over.
_LAUNCH_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--model-family",), {"help": "Model family (also the log sub-directory)."}),
    (("--model-variant",), {"help": "Model variant."}),
    (("--partition",), {"help": "Slurm partition."}),
    (("--qos",), {"help": "Slurm QoS."}),
    (("-A", "--account"), {"help": "Slurm account (optional where the cluster needs none)."}),
    (("--time",), {"help": "Time limit, HH:MM:SS or D-HH:MM:SS."}),
    (("--num-nodes",), {"type": int, "help": "Number of nodes."}),
    (
        ("--multi-node-mode",),
        {
            "choices": ["native", "ray"],
            "help": "How several nodes start: vLLM's own multi-node executor (native, the "
            "default) or a Ray cluster (ray).",
        },
    ),
    (("--gpus-per-node",), {"type": int, "help": "GPUs per node."}),
    (("--cpus-per-task",), {"type": int, "help": "CPUs per task."}),
    (("--mem-per-node",), {"help": "Memory per node, e.g. 64G."}),
    (("--resource-type",), {"help": "GPU type, rendered as --gres=gpu:TYPE:N."}),
    (("--exclude",), {"help": "Nodes to exclude."}),
    (("--nodelist",), {"help": "Nodes to run on."}),
    (("-D", "--work-dir"), {"help": "Working directory of the job."}),
    (("--log-dir",), {"help": "Root of the log tree (default ~/.vec-inf-logs)."}),
    (("--model-weights-parent-dir",), {"help": "Directory holding the model weight folders."}),
    (("--bind",), {"help": "Extra container bind paths, comma separated."}),
    (("--env",), {"help": "Environment for the job: 'K=V,K2=V2'."}),
    (("--venv",), {"help": "Virtual environment to activate, or apptainer / singularity."}),
    (("--container-image",), {"help": "Container image for container mode."}),
    (("--engine",), {"choices": ["vllm", "sglang", "sim"], "help": "Inference engine."}),
    (("--vllm-args",), {"help": "vLLM args: '--max-model-len=65536,--compilation-config=3'."}),
    (("--sglang-args",), {"help": "SGLang args, same form as --vllm-args."}),
    (("--hf-model",), {"help": "Hub id to serve when no local weights exist."}),
]


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("launch options")
    for flags, kwargs in _LAUNCH_FLAGS:
        group.add_argument(*flags, default=None, **kwargs)
    group.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="Name of an environment variable holding the server's API key "
        "(VEC_INF_API_KEY is read by default); the key never reaches logs, JSON or the script.",
    )


def _launch_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for flags, _ in _LAUNCH_FLAGS:
        dest = flags[-1].lstrip("-").replace("-", "_")
        value = getattr(args, dest, None)
        if value is not None:
            overrides[dest] = value
    key_var = getattr(args, "api_key_env", None) or "VEC_INF_API_KEY"
    key = os.environ.get(key_var)
    if getattr(args, "api_key_env", None) and not key:
        from vec_inf_flows.errors import ConfigError

        raise ConfigError(f"--api-key-env {key_var}: that environment variable is not set.")
    if key:
        overrides["api_key"] = key
    return overrides


def build_parser() -> argparse.ArgumentParser:
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
    _add_launch_options(launch)
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

    add_run_command(commands, _add_launch_options)
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
    parser = build_parser()
    args = parser.parse_args(glue_dash_values(sys.argv[1:] if argv is None else argv))
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
