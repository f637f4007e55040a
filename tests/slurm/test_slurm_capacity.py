"""A request no node can hold is refused before sbatch, against the real local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import Sandbox

from vec_inf_flows.backends.slurm.capacity import (
    NodeShape,
    check_fits,
    parse_sinfo_nodes,
    partition_nodes,
)
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.spec import SlurmResources

SINFO = """\
gpu01|a40*|32|257000|gpu:a40:4(S:0-1)
gpu01|long|32|257000|gpu:a40:4(S:0-1)
gpu02|a40*|64|515000|gpu:a40:8,gpu:t4:1
cpu01|cpu|128|1000000|(null)
"""


def test_sinfo_lines_become_node_shapes_of_one_partition() -> None:
    default = parse_sinfo_nodes(SINFO)
    assert [(n.name, n.cpus, n.memory_mb, n.gpus) for n in default] == [
        ("gpu01", 32, 257000, {"a40": 4}),
        ("gpu02", 64, 515000, {"a40": 8, "t4": 1}),
    ]
    assert [n.name for n in parse_sinfo_nodes(SINFO, "cpu")] == ["cpu01"]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"gpus_per_node": 16}, "16 GPUs per node, but its largest node has 9"),
        ({"gpus_per_node": 2, "resource_type": "t4"}, "2 t4 GPUs per node, but its largest"),
        ({"cpus_per_task": 96}, "96 CPUs per task, but its largest node has 64"),
        ({"mem_per_node": "1T"}, "1T of memory per node, but its largest node has 515000M"),
        ({"gpus_per_node": 8, "num_nodes": 2}, "only 1 of its 2 nodes can hold that"),
    ],
)
def test_requests_no_node_can_hold_are_refused(resources: dict[str, object], message: str) -> None:
    nodes = parse_sinfo_nodes(SINFO)
    request = SlurmResources(time="01:00:00", **resources)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        check_fits("M", request, nodes)
    check_fits("M", SlurmResources(time="01:00:00", gpus_per_node=8, resource_type="a40"), nodes)


@pytest.mark.slurm
def test_the_local_cluster_is_read_through_sinfo() -> None:
    nodes = partition_nodes(None)
    assert nodes is not None and {node.name for node in nodes} == {"node1", "node2"}
    assert all(isinstance(node, NodeShape) and node.gpu_count(None) >= 1 for node in nodes)
    assert partition_nodes("no-such-partition") is None


def test_launch_asking_more_gpus_than_a_node_has_submits_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    result = sandbox.cli(
        "launch", "SmolLM2-135M-Instruct", "--engine", "sim", "--gpus-per-node", "8"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "8 GPUs per node, but its largest node has 4" in line
    assert "Slurm would reject the job" in line
    assert sandbox.job_ids() == []
    mem = sandbox.cli("launch", "SmolLM2-135M-Instruct", "--engine", "sim", "--mem-per-node", "64G")
    assert mem.returncode == 1 and "64G of memory per node" in mem.stderr
