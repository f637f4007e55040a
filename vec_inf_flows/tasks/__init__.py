"""Prefect tasks over ``VecInfClient``: one external side effect each, with its own retries.

``server`` (launch, wait, metrics, shutdown), ``workload`` (chunks, workload callables),
``retries`` (which faults are retried), ``ownership`` (labels, the run's registry, hooks),
``teardown`` (bounded shutdown without the Prefect API), ``leases`` (the process's lease keeper
and the owner a launch records), ``blocks`` (block arguments and the client they give),
``naming`` (task-run names), ``lm_eval`` (lm-eval's tasks against a READY server).

Every server a task launches carries a lease this process renews: if the process is killed or
its machine is lost, the server stops by itself once the lease lapses (default 300 s).

Example, inside your own flow:

```python
from prefect import flow
from vec_inf_flows.tasks import collect_metrics, launch_server, release_server, wait_until_ready

@flow
def my_eval() -> float | None:
    server = launch_server("SmolLM2-135M-Instruct", {"time": "00:30:00"})
    try:
        server = wait_until_ready(server, timeout=900)
        ...  # send requests to server.base_url with server.bearer() as the key
        return collect_metrics(server).generation_throughput
    finally:
        release_server(server)  # a plain call: works even if the Prefect API is gone
```
"""

from vec_inf_flows.tasks.blocks import client_for, load_cluster, load_server
from vec_inf_flows.tasks.ownership import (
    FLOW_RUN_LABEL,
    LAUNCH_KEY_LABEL,
    LaunchedServers,
    labels_of,
    launched_servers,
    live_jobs,
    teardown_hook,
)
from vec_inf_flows.tasks.retries import is_transient, retry_launch, retry_on_transient
from vec_inf_flows.tasks.server import (
    batch_launch_servers,
    collect_metrics,
    launch_server,
    shutdown_server,
    wait_until_ready,
)
from vec_inf_flows.tasks.teardown import release_server, release_servers
from vec_inf_flows.tasks.workload import resolve_callable, run_workload, run_workload_chunk

__all__ = [
    "FLOW_RUN_LABEL",
    "LAUNCH_KEY_LABEL",
    "LaunchedServers",
    "batch_launch_servers",
    "client_for",
    "collect_metrics",
    "is_transient",
    "labels_of",
    "launch_server",
    "launched_servers",
    "live_jobs",
    "load_cluster",
    "load_server",
    "release_server",
    "release_servers",
    "resolve_callable",
    "retry_launch",
    "retry_on_transient",
    "run_workload",
    "run_workload_chunk",
    "shutdown_server",
    "teardown_hook",
    "wait_until_ready",
]
