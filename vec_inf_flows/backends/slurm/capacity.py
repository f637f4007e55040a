"""What the partition's nodes can hold, so a request no node can satisfy is refused before
``sbatch`` answers with its bare "Requested node configuration is not available".

One ``sinfo`` per launch (node-oriented: CPUs, memory and GPU gres of each node). When sinfo
cannot answer, nothing is checked: Slurm still judges the request itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vec_inf_flows.backends.slurm.runner import run_command
from vec_inf_flows.errors import ConfigError, SlurmError
from vec_inf_flows.spec import LaunchSpec, SlurmResources

SINFO_TIMEOUT = 5.0
# One gres item: "gpu:4", "gpu:a40:4", "gpu:a40:4(S:0-1)", "gpu:a40:no_consume:4".
_GRES = re.compile(r"^gpu(?::(?P<type>[^:(]+?))?(?::no_consume)?:(?P<count>\d+)(?:\(.*\))?$")
_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class NodeShape:
    name: str
    cpus: int
    memory_mb: int
    gpus: dict[str, int]  # GPU type ("" when untyped) -> count

    def gpu_count(self, gpu_type: str | None) -> int:
        if gpu_type:
            return self.gpus.get(gpu_type, 0)
        return sum(self.gpus.values())


def parse_sinfo_nodes(text: str, partition: str | None = None) -> list[NodeShape]:
    """``sinfo -h -N -o '%N|%P|%c|%m|%G'`` lines of ``partition`` (the default one, starred by
    sinfo, when None); a node is kept once."""
    shapes: dict[str, NodeShape] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 5 or not parts[2].isdigit():
            continue
        name, node_partition, cpus, memory, gres = parts
        wanted = (
            node_partition.rstrip("*") == partition if partition else node_partition.endswith("*")
        )
        if not wanted:
            continue
        mem_digits = re.match(r"\d+", memory)
        gpus: dict[str, int] = {}
        for item in gres.split(","):
            match = _GRES.match(item.strip())
            if match is not None:
                kind = match.group("type") or ""
                gpus[kind] = gpus.get(kind, 0) + int(match.group("count"))
        shapes[name] = NodeShape(
            name, int(cpus), int(mem_digits.group()) if mem_digits else 0, gpus
        )
    return list(shapes.values())


def partition_nodes(partition: str | None) -> list[NodeShape] | None:
    """The nodes of ``partition`` (the default one when None); None when sinfo cannot say."""
    argv = ["sinfo", "--noheader", "--Node", "--format=%N|%P|%c|%m|%G"]
    try:
        result = run_command(argv, timeout=SINFO_TIMEOUT)
    except SlurmError:
        return None
    if not result.ok:
        return None
    return parse_sinfo_nodes(result.stdout, partition) or None


def memory_mb(text: str | None) -> int | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d+)([KMGT])?", text.strip().upper())
    if match is None:
        return None
    return int(int(match.group(1)) * _UNITS[match.group(2) or "M"])


def check_fits(model: str, resources: SlurmResources, nodes: Sequence[NodeShape]) -> None:
    """Refuse what no node (or not enough nodes) of the partition can hold, in one line."""
    where = f"partition {resources.partition}" if resources.partition else "the default partition"
    need_mem = memory_mb(resources.mem_per_node)
    fitting = [
        node
        for node in nodes
        if node.gpu_count(resources.resource_type) >= resources.gpus_per_node
        and node.cpus >= resources.cpus_per_task
        and (need_mem is None or node.memory_mb >= need_mem)
    ]
    if len(fitting) >= resources.num_nodes:
        return
    largest_gpus = max(node.gpu_count(resources.resource_type) for node in nodes)
    largest_cpus = max(node.cpus for node in nodes)
    largest_mem = max(node.memory_mb for node in nodes)
    kind = f"{resources.resource_type} GPUs" if resources.resource_type else "GPUs"
    if resources.gpus_per_node > largest_gpus:
        problem = (
            f"{resources.gpus_per_node} {kind} per node, but its largest node has {largest_gpus}"
        )
    elif resources.cpus_per_task > largest_cpus:
        problem = (
            f"{resources.cpus_per_task} CPUs per task, but its largest node has {largest_cpus}"
        )
    elif need_mem is not None and need_mem > largest_mem:
        problem = (
            f"{resources.mem_per_node} of memory per node, but its largest node has {largest_mem}M"
        )
    else:
        problem = (
            f"{resources.num_nodes} nodes with {resources.gpus_per_node} {kind},"
            f" {resources.cpus_per_task} CPUs and {resources.mem_per_node or 'default'} memory"
            f" each, but only {len(fitting)} of its {len(nodes)} nodes can hold that"
        )
    raise ConfigError(f"Model '{model}' asks {where} for {problem}; Slurm would reject the job.")


def check_specs_fit(specs: Sequence[LaunchSpec]) -> None:
    """``check_fits`` for every spec, with one ``sinfo`` per partition they name."""
    for partition in dict.fromkeys(spec.resources.partition for spec in specs):
        nodes = partition_nodes(partition)
        for spec in specs:
            if nodes and spec.resources.partition == partition:
                check_fits(spec.model_name, spec.resources, nodes)
