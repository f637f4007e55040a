"""``launch``'s replica flags, apart from the group commands so that parsing a ``launch`` line
loads nothing but argparse."""

from __future__ import annotations

import argparse


def add_replica_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("replicas (one model served by several jobs)")
    group.add_argument(
        "--replicas",
        type=int,
        metavar="N",
        help="Launch N independent jobs for the model as one group (status/shutdown take its "
        "group id).",
    )
    group.add_argument(
        "--router",
        choices=["job", "local", "none"],
        default="job",
        help="One OpenAI endpoint in front of the replicas (vllm-router): its own CPU job "
        "(default), a process on this machine, or none.",
    )
    group.add_argument(
        "--router-policy",
        choices=["round_robin", "random", "cache_aware"],
        default="round_robin",
        help="How the router spreads requests.",
    )
    group.add_argument("--max-gpus", type=int, help="GPUs the group may hold at once.")
    group.add_argument(
        "--max-concurrent-replicas", type=int, help="Replicas the group may queue at once."
    )
