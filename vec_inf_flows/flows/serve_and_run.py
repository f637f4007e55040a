"""serve_and_run: one model's server from launch (or attach) to shutdown, with the work between."""

import logging
import time
from typing import Literal

from prefect import flow

from vec_inf_flows.blocks import SlurmCluster, VecInfServer
from vec_inf_flows.catalog.options import LaunchOptions, merge_options
from vec_inf_flows.errors import ConfigError, VecInfError
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.flows._replicas import serve_group
from vec_inf_flows.flows._serving import failed_run, finish, run_name, served, start_server
from vec_inf_flows.flows._workload import Work, run_any
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.replicas.scale import RouterChoice, Scale
from vec_inf_flows.results import ServeResult
from vec_inf_flows.tasks.blocks import client_for, load_cluster, load_server
from vec_inf_flows.tasks.leases import DEFAULT_LEASE
from vec_inf_flows.tasks.ownership import LaunchedServers, launched_servers, teardown_hook
from vec_inf_flows.tasks.server import wait_until_ready
from vec_inf_flows.tasks.workload import Workload

logger = logging.getLogger("vec_inf_flows")
SETTLE_SECONDS = 30.0
EngineChoice = Literal["vllm", "sglang", "sim"]


def _replaceable(
    servers: LaunchedServers,
    server: ServerHandle,
    dataset: str | None,
    replaced: int,
    relaunches: int,
) -> bool:
    """Relaunch only a server we launched, that is really gone, for a resumable dataset run.

    A dying engine can answer 503 for a moment before its process exits, so the status gets
    ``SETTLE_SECONDS`` to become final; a server that is READY again was not the problem.
    """
    if dataset is None or replaced >= relaunches or not servers.owns(server.job_id):
        return False
    client = client_for(servers.cluster)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            status = client.status(server)
        except VecInfError as error:
            logger.warning("cannot tell whether server %s is alive: %s", server.job_id, error)
            return False
        if status.terminal or status.server_status is ServerStatus.READY:
            return status.terminal
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def _attached(
    job_id: str, block: VecInfServer | None, cluster: SlurmCluster | None
) -> ServerHandle:
    """The handle of a job launched earlier; a server block's API key, when it has one, is the
    key to use (the job's own is read from its 0600 secrets file otherwise)."""
    handle = client_for(cluster).attach(job_id)
    if block is not None and block.api_key is not None:
        handle = handle.model_copy(update={"api_key": block.api_key})
    return handle.model_copy(update={"cluster": cluster.name if cluster else None})


@flow(
    name="serve-and-run",
    flow_run_name=run_name("serve", "model_name", "server", "job_id"),
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def serve_and_run(
    model_name: str | None = None,
    dataset: str | None = None,
    output: str | None = None,
    engine: EngineChoice | None = None,
    server: VecInfServer | str | None = None,
    cluster: SlurmCluster | str | None = None,
    job_id: str | None = None,
    launch_options: LaunchOptions | None = None,
    workload: Workload | None = None,
    chunk_size: int = 500,
    output_dir: str | None = None,
    min_success_ratio: float = 0.0,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
    relaunches: int = 1,
    lease: LeasePolicy = DEFAULT_LEASE,
    scorer: str | None = None,
    retry_failed: bool = False,
    batch_output: bool = False,
    replicas: int = 1,
    router: RouterChoice = "none",
    elastic: bool = False,
    max_gpus: int | None = None,
    max_concurrent_replicas: int | None = None,
) -> ServeResult:
    """Provision a model server (or attach to a running one), run a dataset or workload
    against it, collect its metrics and shut it down.

    A server this flow launched is always shut down, however the run ends, and carries a lease
    this run's process renews, so it also ends when the process is killed; one given by
    ``job_id`` is used as it is, left running and not leased. If a server this flow launched
    dies while the dataset runs, it is replaced (up to ``relaunches`` times) and the dataset
    goes on where it stopped. The run is FAILED when no request succeeded (or fewer than
    ``min_success_ratio``), and its message says how many failed and why.

    Args:
        model_name: Model to serve, as the catalog names it (default: the server block's).
        dataset: JSONL or CSV file of requests to send, one per line.
        output: JSONL file for the results, one record per request id (default: next to the
            dataset, or in output_dir, named after the model).
        engine: Inference engine: vllm, sglang or sim (the simulator); default: the catalog's.
        server: Model-server block (or its name): model, launch options and API key.
        cluster: Cluster block (or its name) to launch on; default: the server block's cluster,
            else this machine's defaults.
        job_id: Attach to this running server instead of launching one (it is not shut down).
        launch_options: Launch options laid over the cluster's and the server block's
            (time limit, resources, engine arguments such as --max-num-seqs ...).
        workload: Instead of a dataset, a workload callable "package.module:function",
            called with the server's handle.
        chunk_size: Requests per task run; a failed chunk is retried on its own.
        output_dir: Directory for the results file when no output is given.
        min_success_ratio: Fraction of requests that must succeed for the run to be
            COMPLETED; a run where none succeeded is FAILED whatever this says.
        ready_timeout: Seconds to wait for the server to become READY.
        poll_interval: Longest pause between two status checks while waiting, in seconds.
        relaunches: How many times a launched server that dies mid-dataset is replaced
            (with replicas: replacements across the group).
        lease: How often this run renews its servers' lease and how long a server waits for a
            renewal before it stops by itself (default: every 60 s, lapsing after 300 s): if
            the process running this flow dies (SIGKILL, a lost worker machine), its servers
            end within the lapse.
        scorer: How records with an 'expected' or 'reference' are scored: exact_match,
            contains, regex, regex:PATTERN, numeric, numeric:TOLERANCE, embedding_cosine, or
            "package.module:function"; default: auto (exact_match for text, embedding_cosine
            for embeddings).
        retry_failed: Send again the requests the output file records as failed (the
            answered ones are kept); otherwise every recorded id counts as done.
        batch_output: Also write the results in the OpenAI Batch output format, as
            OUTPUT.batch.jsonl beside the output file OUTPUT.
        replicas: Serve the model from this many independent jobs (a replica group): work
            starts on the first READY one, the others join as they become READY, one that
            dies is replaced and its requests go to the others.
        router: One OpenAI-compatible endpoint in front of the replicas (vllm-router): its
            own CPU job, a local process, or none (the runner spreads requests itself). A
            workload callable needs it: it gets the endpoint.
        elastic: Size the group by its backlog, up to ``replicas``: add replicas while the
            backlog is deep, release them as it drains.
        max_gpus: GPUs the group may hold at once.
        max_concurrent_replicas: Replicas the group may have queued or running at once.
    """
    check_parameters(locals())  # before anything is launched
    scale = Scale(replicas, router, elastic, relaunches, max_gpus, max_concurrent_replicas)
    scale.check(workload, job_id)
    enable_library_logs()
    block = load_server(server)
    where = load_cluster(cluster) or (block.cluster if block else None)
    if job_id is None and not (model_name or block):
        raise ConfigError("serve_and_run needs a model_name, a server block or a job_id.")
    options = merge_options(launch_options, {"engine": engine} if engine else None)
    work = Work(
        dataset, workload, chunk_size, output_dir, output, scorer, retry_failed, batch_output
    )
    with launched_servers(where, lease) as servers:
        if scale.grouped:
            result = serve_group(
                servers, model_name, options, block, scale, work, ready_timeout, poll_interval
            )
            shortfall = result.workload.shortfall(min_success_ratio) if result.workload else None
            return failed_run(shortfall, result) if shortfall else result
        if job_id is not None:
            handle = wait_until_ready(_attached(job_id, block, where), ready_timeout, poll_interval)
        else:
            handle = start_server(servers, model_name, options, block)
            handle = wait_until_ready(handle, ready_timeout, poll_interval, where)
        replaced = 0
        while True:
            try:
                summary, custom = run_any(handle, work if replaced == 0 else work.resumed())
                break
            except Exception as error:
                if not _replaceable(servers, handle, dataset, replaced, relaunches):
                    raise
                replaced += 1
                logger.warning(
                    "server %s died during the run (%s); launching replacement %d of %d",
                    handle.job_id, error, replaced, relaunches,
                )  # fmt: skip
                finish(servers, handle)
                handle = start_server(servers, model_name, options, block)
                handle = wait_until_ready(handle, ready_timeout, poll_interval, where)
        if summary is not None and replaced:
            summary = summary.model_copy(update={"relaunches": replaced})
        result = served(handle, servers.owns(handle.job_id), (summary, custom), where)
        if result.launched:
            finish(servers, handle)
    shortfall = summary.shortfall(min_success_ratio) if summary is not None else None
    return failed_run(shortfall, result) if shortfall else result
