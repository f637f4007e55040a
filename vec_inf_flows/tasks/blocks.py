"""Block arguments as the tasks and flows take them: a block object, its saved name, or None.

A name is loaded once here; an object is used as it is (an unsaved block works in-process).
The client always comes from the cluster block, never from a global.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from vec_inf_flows.blocks import SlurmCluster, VecInfServer
from vec_inf_flows.tasks.leases import process_leases

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.handle import ServerHandle

ClusterArg = SlurmCluster | str | None
ServerArg = VecInfServer | str | None


def load_cluster(cluster: ClusterArg) -> SlurmCluster | None:
    if cluster is None or isinstance(cluster, SlurmCluster):
        return cluster
    return cast(SlurmCluster, SlurmCluster.load(cluster))


def load_server(server: ServerArg) -> VecInfServer | None:
    if server is None or isinstance(server, VecInfServer):
        return server
    return cast(VecInfServer, VecInfServer.load(server))


def client_for(cluster: SlurmCluster | None) -> VecInfClient:
    """The cluster's client; without a cluster, this machine's defaults. Every client of the
    Prefect layer shares this process's lease keeper (``tasks.leases``), so whichever one tears
    a server down also stops renewing its lease."""
    if cluster is not None:
        return cluster.get_client(process_leases())
    from vec_inf_flows.client import VecInfClient

    return VecInfClient(leases=process_leases())


def cluster_of(server: ServerHandle | str, cluster: ClusterArg) -> SlurmCluster | None:
    """The cluster a task acts on for a server: the one given, else the block its handle was
    launched with (by name), else none."""
    named = server.cluster if not isinstance(server, str) else None
    return load_cluster(cluster if cluster is not None else named)
