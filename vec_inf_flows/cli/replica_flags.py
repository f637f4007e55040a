"""The replica flags of ``launch`` and ``run``, apart from the group commands so that parsing a
command line loads nothing but argparse."""

from __future__ import annotations

import argparse

# (launch's help, run's help): a launch makes one group, a run one group per model.
_HELP = {
    "replicas": (
        "Launch N independent jobs for the model as one group (status/shutdown take its id).",
        "Serve each model from N independent jobs; work starts on the first READY one.",
    ),
    "router": (
        "One OpenAI endpoint in front of the replicas (vllm-router): its own CPU job "
        "(default), a process on this machine, or none.",
        "One OpenAI endpoint in front of each group (vllm-router): its own CPU job, a process "
        "on this machine, or none (default: the flow's runner spreads the requests itself).",
    ),
    "max_gpus": ("GPUs the group may hold at once.", "GPUs all the run's replicas may hold."),
    "max_replicas": (
        "Replicas the group may queue at once.",
        "Replicas the run may have queued or running at once.",
    ),
}


def add_replica_options(parser: argparse.ArgumentParser, flows: bool = False) -> None:
    """``launch``'s flags, or with ``flows`` those of ``run`` (flow parameters, plus
    ``--elastic``)."""
    which = 1 if flows else 0
    group = parser.add_argument_group("replicas (one model served by several jobs)")
    group.add_argument("--replicas", type=int, metavar="N", help=_HELP["replicas"][which])
    group.add_argument(
        "--router",
        choices=["job", "local", "none"],
        default=None if flows else "job",
        help=_HELP["router"][which],
    )
    if flows:
        group.add_argument(
            "--elastic",
            action="store_true",
            default=None,
            help="Size each group by its backlog, up to --replicas: release replicas as the "
            "backlog drains.",
        )
    else:
        group.add_argument(
            "--router-policy",
            choices=["round_robin", "random", "cache_aware"],
            default="round_robin",
            help="How the router spreads requests.",
        )
    group.add_argument("--max-gpus", type=int, help=_HELP["max_gpus"][which])
    group.add_argument("--max-concurrent-replicas", type=int, help=_HELP["max_replicas"][which])
