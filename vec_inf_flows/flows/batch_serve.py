"""batch_serve: several models as one heterogeneous job; they start together, end together."""

from typing import Any

from prefect import flow

from vec_inf_flows.artifacts import publish_launch_table
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._lifecycle import enable_library_logs, launched_servers, teardown_hook
from vec_inf_flows.flows._workload import run_any
from vec_inf_flows.flows.serve_and_run import best_effort_metrics, finish
from vec_inf_flows.tasks import batch_launch_servers, load_cluster, wait_until_ready


@flow(
    name="batch-serve",
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def batch_serve(
    models: list[str],
    batch_config: str | None = None,
    dataset: str | None = None,
    workload: str | None = None,
    chunk_size: int = 500,
    output_dir: str | None = None,
    cluster_block: str | None = None,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
) -> list[dict[str, Any]]:
    """Batch-launch ``models``, wait for all, run the workload on each, shut the job down.

    The same dataset or workload runs on every model; one row per model comes back.
    """
    check_parameters(locals())  # before anything is launched
    enable_library_logs()
    cluster = load_cluster(cluster_block)
    results: list[dict[str, Any]] = []
    with launched_servers(cluster) as servers:
        batch = batch_launch_servers(models, batch_config, cluster)
        servers.add(batch.job_id)  # cancelling the leader ends every component
        for launched in batch.servers:
            publish_launch_table(launched.model_name, launched.job_id, launched.config, "SUBMITTED")
        ready = [
            wait_until_ready(job_id, ready_timeout, poll_interval, cluster)
            for job_id in batch.job_ids
        ]
        for status in ready:
            assert status.base_url is not None
            summary = run_any(
                status.base_url,
                status.model_name,
                dataset=dataset,
                workload=workload,
                chunk_size=chunk_size,
                output_dir=output_dir,
            )
            results.append(
                {
                    "model_name": status.model_name,
                    "job_id": status.job_id,
                    "base_url": status.base_url,
                    "workload": summary,
                    "metrics": best_effort_metrics(status.job_id, cluster),
                }
            )
        finish(servers, batch.job_id)
    return results
