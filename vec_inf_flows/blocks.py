"""Prefect blocks that act: a cluster gives the client, a model server launches itself.

``SlurmCluster`` holds where jobs run (its ``backend``) and the launch options every job on
it gets; ``get_client()`` is the one way the Prefect layer obtains a ``VecInfClient``.
``VecInfServer`` is a ``JobBlock``: ``trigger()`` launches the server and returns a
``ServerRun`` whose ``wait_for_completion()`` waits until READY and whose ``fetch_result()``
is the ``ServerHandle``; ``shutdown()`` (or leaving ``with server.start() as run:``) ends it.

This module is the package's ``prefect.collections`` entry point, which Prefect imports when
its server starts and whenever ``Block.load`` meets an unknown slug, so it imports only
pydantic, Prefect's block classes and the option and handle models: the client and the Slurm
layer load when a block first acts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from prefect.blocks.abstract import JobBlock, JobRun
from prefect.blocks.core import Block
from pydantic import Field, GetJsonSchemaHandler, HttpUrl, SecretStr
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from vec_inf_flows.catalog.options import LaunchOptions, OptionsLayer, merge_options
from vec_inf_flows.handle import ServerHandle

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient
    from vec_inf_flows.lifecycle.lease import LeaseKeeper, LeasePolicy
    from vec_inf_flows.lifecycle.owner import OwnerRecord
    from vec_inf_flows.models import LaunchResponse

_DOCS_URL = HttpUrl("https://github.com/VectorInstitute/vector-inference")

BackendName = Literal["auto", "slurm", "local"]


class SlurmCluster(Block):
    """A cluster this package launches servers on, and the defaults for every job on it.

    Example:
        ```python
        from vec_inf_flows.blocks import SlurmCluster

        cluster = SlurmCluster.load("BLOCK_NAME")
        client = cluster.get_client()
        ```
    """

    _block_type_name = "vec-inf Slurm Cluster"
    _block_type_slug = "vec-inf-slurm-cluster"
    _description = "Where vec-inf servers run, and the launch options every job there gets."
    _documentation_url = _DOCS_URL

    backend: BackendName = Field(
        default="auto",
        description="Where jobs run: slurm, local processes, or auto (Slurm when this machine "
        "has a Slurm configuration, else local).",
    )
    options: LaunchOptions = Field(
        default_factory=LaunchOptions,
        description="Launch options for every job here (account, partition, QoS, log "
        "directory, time limit, resources, environment); a server block's and the call's "
        "options win over them.",
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """``backend`` listed as required (its default still applies). Prefect accepts a block
        picked in a run form (``{"$ref": ...}``) only where it does not also match the block's
        own schema; with every field optional it did, so every cluster picked in the UI was
        refused ("not valid under any of the given schemas")."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target["required"] = sorted({*target.get("required", []), "backend"})
        return schema

    def get_client(self, leases: LeaseKeeper | None = None) -> VecInfClient:
        """The client for this cluster (jobs are found again through the user's job index);
        ``leases``: the keeper that renews the leases of what it launches (the tasks pass
        their process's one)."""
        from vec_inf_flows.client import VecInfClient

        return VecInfClient(backend=self.backend, leases=leases)

    @property
    def name(self) -> str | None:
        """The name this block was saved or loaded under (None for an unsaved one)."""
        return self._block_document_name


class VecInfServer(JobBlock[ServerHandle]):
    """One model server to launch: the model, its launch options, API key and cluster.

    Example:
        ```python
        from vec_inf_flows.blocks import VecInfServer

        server = VecInfServer.load("BLOCK_NAME")
        with server.start() as run:
            handle = run.wait_until_ready()
        ```
    """

    _block_type_name = "vec-inf Model Server"
    _block_type_slug = "vec-inf-model-server"
    _description = "A model served by vec-inf: model name, launch options, API key, cluster."
    _documentation_url = _DOCS_URL

    model_name: str = Field(description="Model name from the catalog or the user's model file.")
    options: LaunchOptions = Field(
        default_factory=LaunchOptions,
        description="Launch options for this model; they win over the cluster's.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key the server requires from its clients."
    )
    cluster: SlurmCluster | None = Field(
        default=None, description="Cluster to launch on; the flow's cluster otherwise."
    )
    ready_timeout: float = Field(
        default=1800.0, gt=0, description="Seconds to wait for READY in wait_for_completion."
    )

    def launch_options(
        self, cluster: SlurmCluster | None = None, call: OptionsLayer = None
    ) -> LaunchOptions:
        """The options a launch of this server gets: cluster < this block < the call."""
        where = cluster or self.cluster
        return merge_options(where.options if where else None, self.options, call)

    def submit(
        self,
        cluster: SlurmCluster | None = None,
        call: OptionsLayer = None,
        labels: Mapping[str, str] | None = None,
        *,
        lease: LeasePolicy | None = None,
        owner: OwnerRecord | None = None,
        leases: LeaseKeeper | None = None,
    ) -> tuple[VecInfClient, LaunchResponse]:
        """Launch through the cluster's client, with ``labels`` and ``owner`` recorded in the
        job and, with ``lease``, a lease renewed by ``leases`` (the client's own keeper if
        None); the response's handle names the cluster block."""
        where = cluster or self.cluster
        client = where.get_client(leases) if where else _default_client(leases)
        launched = client.launch(
            self.model_name,
            self.launch_options(where, call),
            api_key=self.api_key,
            labels=labels,
            lease=lease,
            owner=owner,
        )
        name = where.name if where else None
        handle = launched.handle.model_copy(update={"cluster": name})
        return client, launched.model_copy(update={"handle": handle})

    def start(
        self, cluster: SlurmCluster | None = None, lease: LeasePolicy | None = None
    ) -> ServerRun:
        """Launch now (synchronously); the run is a context manager that shuts it down.

        Like the tasks, the server carries a lease this process renews (``lease``, default
        every 60 s, lapsing after 300 s) and records this flow run as its owner: if the
        process dies, the server stops by itself once the lease lapses.
        """
        from vec_inf_flows.tasks.leases import DEFAULT_LEASE, process_leases, run_owner

        client, launched = self.submit(
            cluster, lease=lease or DEFAULT_LEASE, owner=run_owner(), leases=process_leases()
        )
        return ServerRun(client, launched.handle, self.ready_timeout)

    async def trigger(self) -> ServerRun:
        """``JobBlock``: launch the server; the run's result is its ``ServerHandle``."""
        return await asyncio.to_thread(self.start)


class ServerRun(JobRun[ServerHandle]):
    """A launched server: wait until READY, take its handle, shut it down."""

    def __init__(self, client: VecInfClient, handle: ServerHandle, ready_timeout: float) -> None:
        self.client = client
        self.handle = handle
        self.ready_timeout = ready_timeout

    def wait_until_ready(self, poll_interval: float = 2.0) -> ServerHandle:
        """Block until the server answers; raises ``ServerError`` if it fails first."""
        self.handle = self.client.wait_until_ready(self.handle, self.ready_timeout, poll_interval)
        return self.handle

    async def wait_for_completion(self) -> logging.Logger:
        """``JobRun``: a server's start-up is complete when it is READY."""
        await asyncio.to_thread(self.wait_until_ready)
        return logging.getLogger("vec_inf_flows")

    async def fetch_result(self) -> ServerHandle:
        """``JobRun``: the handle (with its base URL once READY)."""
        return self.handle

    def shutdown(self) -> list[str]:
        return self.client.shutdown(self.handle)

    def __enter__(self) -> ServerRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.shutdown()


def _default_client(leases: LeaseKeeper | None = None) -> VecInfClient:
    from vec_inf_flows.client import VecInfClient

    return VecInfClient(leases=leases)
