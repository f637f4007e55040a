"""batch_serve: several models as one heterogeneous job; they start together, end together."""

from prefect import flow

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.flows._serving import failed_run, run_name, served
from vec_inf_flows.flows._workload import Work, run_any
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.results import ServeResult
from vec_inf_flows.tasks.blocks import load_cluster
from vec_inf_flows.tasks.leases import DEFAULT_LEASE
from vec_inf_flows.tasks.ownership import launched_servers, teardown_hook
from vec_inf_flows.tasks.server import batch_launch_servers, shutdown_server, wait_until_ready


@flow(
    name="batch-serve",
    flow_run_name=run_name("batch", "models"),
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def batch_serve(
    models: list[str],
    dataset: str | None = None,
    output_dir: str | None = None,
    batch_config: str | None = None,
    cluster: SlurmCluster | str | None = None,
    workload: str | None = None,
    chunk_size: int = 500,
    min_success_ratio: float = 0.0,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
    lease: LeasePolicy = DEFAULT_LEASE,
) -> list[ServeResult]:
    """Launch several models as one heterogeneous Slurm job, run the same dataset or workload
    on each, and shut the job down; one result per model.

    The run is FAILED when, on any model, no request succeeded (or fewer than
    ``min_success_ratio``); its message says which and why.

    Args:
        models: Models to serve together, as the catalog names them (single-node models).
        dataset: JSONL or CSV file of requests sent to every model.
        output_dir: Directory for the result files (one per model); default: next to the
            dataset.
        batch_config: A models YAML file merged over the catalog for this batch (engine,
            time limit, resources of each model).
        cluster: Cluster block (or its name) whose client submits the job.
        workload: Instead of a dataset, a workload callable "package.module:function",
            called with each server's handle.
        chunk_size: Requests per task run.
        min_success_ratio: Fraction of requests that must succeed on each model; a model
            where none succeeded fails whatever this says.
        ready_timeout: Seconds to wait for the servers to become READY.
        poll_interval: Longest pause between two status checks while waiting, in seconds.
        lease: How often this run renews its servers' lease and how long a server waits for a
            renewal before it stops by itself (default: every 60 s, lapsing after 300 s): if
            the process running this flow dies (SIGKILL, a lost worker machine), its servers
            end within the lapse.
    """
    check_parameters(locals())  # before anything is launched
    enable_library_logs()
    where = load_cluster(cluster)
    results: list[ServeResult] = []
    with launched_servers(where, lease) as servers:
        batch = batch_launch_servers(models, batch_config, where, lease)
        servers.add(batch.job_id)  # cancelling the leader ends every component
        ready = [
            wait_until_ready(launched.handle, ready_timeout, poll_interval, where)
            for launched in batch.servers
        ]
        for handle in ready:
            done = run_any(handle, Work(dataset, workload, chunk_size, output_dir))
            results.append(served(handle, True, done, where))
        if shutdown_server(batch.job_id, where, return_state=True).is_completed():
            servers.forget(batch.job_id)
    shortfalls = [
        f"{result.server.model_name}: {text}"
        for result in results
        if result.workload is not None and (text := result.workload.shortfall(min_success_ratio))
    ]
    return failed_run("; ".join(shortfalls), results) if shortfalls else results
