"""Prefect tasks over ``VecInfClient``: one external side effect each, with its own retry policy.

Every task takes ``cluster_block`` (the name of a saved ``SlurmCluster``) so deployments can
point at a cluster by name. Nothing here caches results (``NO_CACHE``): a cached launch or status
could hand back a server that died long ago.

Example, inside your own flow:

```python
from prefect import flow
from vec_inf_flows.tasks import (
    collect_metrics, launch_server, release_server, shutdown_server, wait_until_ready,
)

@flow
def my_eval() -> dict:
    launched = launch_server("SmolLM2-135M-Instruct", {"time": "00:30:00"})
    try:
        ready = wait_until_ready(launched.job_id, timeout=900)
        ...  # send requests to ready.base_url
        return collect_metrics(launched.job_id)
    finally:
        release_server(launched.job_id)  # plain call: works even if the Prefect API is gone
```
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, cast

import httpx
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.runtime import flow_run as runtime_flow_run
from prefect.runtime import task_run as runtime_task_run

from vec_inf_flows import progress
from vec_inf_flows.blocks import LaunchOverrides, SlurmCluster, VecInfServer
from vec_inf_flows.catalog.options import parse_env_option
from vec_inf_flows.errors import ConfigError, ServerError, SlurmError, SlurmTransientError
from vec_inf_flows.events import emit_server_event
from vec_inf_flows.jobdir import read_json
from vec_inf_flows.models import (
    BatchLaunchResponse,
    LaunchResponse,
    ServerStatus,
    StatusResponse,
)
from vec_inf_flows.workload.reader import Chunk
from vec_inf_flows.workload.runner import RunOptions, run_chunk
from vec_inf_flows.workload.stats import Progress

logger = logging.getLogger("vec_inf_flows")

# Labels on every job launched from a flow: the cleanup flow and the crash hooks find a run's
# servers by the first; a retried launch finds the job an earlier attempt submitted by the second.
FLOW_RUN_LABEL = "prefect.flow-run-id"
LAUNCH_KEY_LABEL = "vec-inf-flows.launch-key"
CHUNK_DEADLINE_S = 3600.0  # one chunk's requests; a retry resumes where it stopped


class ServerClient(Protocol):
    """The part of ``VecInfClient`` the Prefect layer uses (a seam for fault-injection tests)."""

    def launch(
        self,
        model_name: str,
        options: Any = None,
        *,
        labels: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LaunchResponse: ...
    def batch_launch(
        self,
        model_names: Sequence[str],
        batch_config: str | Path | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> BatchLaunchResponse: ...
    def status(self, job_id: str) -> StatusResponse: ...
    def statuses(self, job_ids: Sequence[str] | None = None) -> list[StatusResponse]: ...
    def metrics(self, job_id: str, previous: Any = None) -> Any: ...
    def shutdown(self, job_ids: str | Sequence[str]) -> list[str]: ...
    def wait_until_ready(
        self, job_id: str, timeout: float = 1800.0, poll_interval: float = 5.0
    ) -> StatusResponse: ...


ClientFactory = Callable[[SlurmCluster | None], ServerClient]


def _real_client(cluster: SlurmCluster | None) -> ServerClient:
    from vec_inf_flows.client import VecInfClient

    client: ServerClient = VecInfClient()  # the cluster's log_dir travels in the launch options
    return client


CLIENT_FACTORY_ENV = "VEC_INF_FLOWS_CLIENT_FACTORY"


def _initial_factory() -> ClientFactory:
    """``$VEC_INF_FLOWS_CLIENT_FACTORY`` ("package.module:function") lets a deployment's runs
    build a site-specific client (another backend, a test double) without code changes."""
    path = os.environ.get(CLIENT_FACTORY_ENV)
    return cast(ClientFactory, resolve_callable(path)) if path else _real_client


_factory_lock = threading.Lock()
_client_factory: ClientFactory | None = None


def current_factory() -> ClientFactory:
    global _client_factory
    with _factory_lock:
        if _client_factory is None:
            _client_factory = _initial_factory()
        return _client_factory


@contextmanager
def client_factory(factory: ClientFactory) -> Iterator[None]:
    """Use ``factory`` to build clients inside the block (tests, or a pre-configured client)."""
    global _client_factory
    previous = current_factory()
    with _factory_lock:
        _client_factory = factory
    try:
        yield
    finally:
        with _factory_lock:
            _client_factory = previous


def load_cluster(cluster_block: str | SlurmCluster | None) -> SlurmCluster | None:
    if cluster_block is None or isinstance(cluster_block, SlurmCluster):
        return cluster_block
    return cast(SlurmCluster, SlurmCluster.load(cluster_block))


def load_server(server_block: str | VecInfServer | None) -> VecInfServer | None:
    if server_block is None or isinstance(server_block, VecInfServer):
        return server_block
    return cast(VecInfServer, VecInfServer.load(server_block))


def get_client(cluster_block: str | SlurmCluster | None = None) -> ServerClient:
    """A core client for the named cluster block (``None``: this host's defaults)."""
    return current_factory()(load_cluster(cluster_block))


# --- retry policy --------------------------------------------------------------------------------


def _exception_of(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as error:
        return error
    return None


def is_transient(error: BaseException | None) -> bool:
    """Faults where the same request can succeed later: Slurm unreachable, HTTP transport, 5xx."""
    if isinstance(error, SlurmTransientError):
        return True
    if isinstance(error, SlurmError):  # permanent Slurm refusals, SlurmNotInstalledError ...
        return False
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500
    return isinstance(error, httpx.TransportError | ConnectionError)


def retry_on_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition for reads and cancels, which are safe to repeat."""
    error = _exception_of(state)
    retry = is_transient(error) or (
        isinstance(error, TimeoutError) and not isinstance(error, ServerError)
    )
    logger.info(
        "task %s failed with %r: %s", task_run.name, error, "retrying" if retry else "final"
    )
    return retry


def retry_launch(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a submission only after a fault that left no job behind.

    The client cancels its held job before raising ``SlurmTransientError``, so that error alone
    is retried: after anything else a job may exist, and a second attempt could start a second.
    """
    error = _exception_of(state)
    retry = isinstance(error, SlurmTransientError)
    logger.info(
        "launch %s failed with %r: %s", task_run.name, error, "retrying" if retry else "final"
    )
    return retry


# --- job ownership -------------------------------------------------------------------------------


def owner_labels(launch_key: str | None = None) -> dict[str, str]:
    """Labels recorded in the job's JSON: which flow run launched it, and by which attempt."""
    labels: dict[str, str] = {}
    flow_run_id = _current_flow_run_id()
    if flow_run_id:
        labels[FLOW_RUN_LABEL] = flow_run_id
    if launch_key:
        labels[LAUNCH_KEY_LABEL] = launch_key
    return labels


def labels_of(job_dir: str | None) -> dict[str, str]:
    """The labels a job was launched with (empty for jobs started without them)."""
    if not job_dir:
        return {}
    directory = Path(job_dir)
    config = read_json(directory / f"{directory.name}.json")
    labels = (config or {}).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def live_jobs(client: ServerClient) -> list[StatusResponse]:
    return [status for status in client.statuses() if not status.terminal]


def find_launched(client: ServerClient, launch_key: str) -> StatusResponse | None:
    """The live job an earlier attempt of this launch submitted, if any."""
    for status in live_jobs(client):
        if labels_of(status.job_dir).get(LAUNCH_KEY_LABEL) == launch_key:
            return status
    return None


# --- launch options ------------------------------------------------------------------------------


def merge_launch_options(
    cluster: SlurmCluster | None,
    server: VecInfServer | None,
    overrides: LaunchOverrides | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Cluster defaults < server block < explicit overrides; ``env`` is merged key by key."""
    layers: list[dict[str, Any]] = []
    if cluster is not None:
        layers.append(cluster.launch_defaults())
    if server is not None:
        layers.append(server.overrides.as_kwargs())
        if server.engine_args:
            layers.append({"vllm_args": dict(server.engine_args)})
        if server.api_key is not None:
            layers.append({"api_key": server.api_key.get_secret_value()})
    if overrides is not None:
        layers.append(
            LaunchOverrides.model_validate(overrides).as_kwargs()
            if not isinstance(overrides, LaunchOverrides)
            else overrides.as_kwargs()
        )
    merged: dict[str, Any] = {}
    env: dict[str, str] = {}
    for layer in layers:
        env.update(parse_env_option(layer.get("env")))
        merged.update({key: value for key, value in layer.items() if key != "env"})
    if env:
        merged["env"] = env
    return merged


def _current_flow_run_id() -> str | None:
    run_id = runtime_flow_run.id
    return str(run_id) if run_id else None


def _task_run_label(prefix: str, *names: str) -> Callable[[], str]:
    def label() -> str:
        params = runtime_task_run.parameters
        parts = [str(params[name]) for name in names if params.get(name) is not None]
        return "-".join([prefix, *parts])

    return label


# --- tasks ---------------------------------------------------------------------------------------
#
# The tasks ``evaluate`` runs in worker threads set no ``timeout_seconds``: there a Prefect timeout
# interrupts nothing and logs a warning per task run. They bound themselves instead: each Slurm
# command has a hard timeout per attempt (sbatch 150 s, the others 30 s) and a few attempts, each
# HTTP call a timeout of seconds, ``wait_until_ready`` its timeout, a chunk ``CHUNK_DEADLINE_S``.
# ``run_workload`` keeps its Prefect timeout: only that can interrupt a user's callable, and the
# flows call it from the main thread, where it works.
#
# Only the launch tasks carry tags (a tag concurrency limit on "gpu-job" throttles submission
# bursts). Every tagged task run costs Prefect a concurrency-slot round trip to the API, which a
# busy SQLite server answers in seconds; the waits, scrapes, shutdowns and chunks are untagged.


@task(
    name="launch-server",
    task_run_name=_task_run_label("launch", "model_name"),
    tags=["vec-inf", "gpu-job"],
    retries=2,
    retry_delay_seconds=[5, 20],
    retry_condition_fn=retry_launch,
    cache_policy=NO_CACHE,
)
def launch_server(
    model_name: str | None = None,
    overrides: LaunchOverrides | dict[str, Any] | None = None,
    cluster_block: str | SlurmCluster | None = None,
    server_block: str | VecInfServer | None = None,
) -> LaunchResponse:
    """Submit one model server; never submits twice for one task run.

    The job carries this flow run's id (for cleanup) and a launch key; a retried attempt first
    looks for a live job with its key and adopts it instead of submitting again.

    Example: ``launched = launch_server("SmolLM2-135M-Instruct", {"time": "01:00:00"})``
    """
    server = load_server(server_block)
    cluster = load_cluster(cluster_block) or (server.cluster if server else None)
    name = model_name or (server.model_name if server else None)
    if not name:
        raise ConfigError("launch_server needs a model_name or a server_block.")
    client = current_factory()(cluster)
    options = merge_launch_options(cluster, server, overrides)
    launch_key = str(runtime_task_run.id or "") or None
    if launch_key and (runtime_task_run.run_count or 1) > 1:
        adopted = find_launched(client, launch_key)
        if adopted is not None:
            logger.warning("adopting job %s submitted by an earlier attempt", adopted.job_id)
            return LaunchResponse(
                job_id=adopted.job_id,
                job_name="",
                model_name=adopted.model_name,
                job_dir=adopted.job_dir or "",
                config={},
            )
    launched = client.launch(name, labels=owner_labels(launch_key), **options)
    emit_server_event("submitted", launched.job_id, launched.model_name, job_dir=launched.job_dir)
    logger.info("launched %s as job %s", launched.model_name, launched.job_id)
    return launched


@task(
    name="batch-launch-servers",
    task_run_name=_task_run_label("batch-launch"),
    tags=["vec-inf", "gpu-job"],
    retries=2,
    retry_delay_seconds=[5, 20],
    retry_condition_fn=retry_launch,
    cache_policy=NO_CACHE,
)
def batch_launch_servers(
    model_names: list[str],
    batch_config: str | None = None,
    cluster_block: str | SlurmCluster | None = None,
) -> BatchLaunchResponse:
    """Submit several models as one heterogeneous job: they start together or not at all.

    Example: ``batch = batch_launch_servers(["model-a", "model-b"])``; ``batch.job_ids`` has one
    id per model, ``batch.job_id`` is the leader that ``shutdown_server`` cancels as a whole.
    """
    if not model_names:
        raise ConfigError("batch_launch_servers needs at least one model name.")
    client = get_client(cluster_block)
    launched = client.batch_launch(model_names, batch_config, labels=owner_labels())
    for server in launched.servers:
        emit_server_event("submitted", server.job_id, server.model_name, job_dir=server.job_dir)
    return launched


@task(
    name="wait-until-ready",
    task_run_name=_task_run_label("wait", "job_id"),
    retries=3,
    retry_delay_seconds=[2, 5, 10],
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def wait_until_ready(
    job_id: str,
    timeout: float = 1800.0,
    poll_interval: float = 2.0,
    cluster_block: str | SlurmCluster | None = None,
) -> StatusResponse:
    """Block until the server answers ``/health``; a failed or timed-out server is not retried.

    Emits ``vec-inf.server.ready`` or ``vec-inf.server.failed``.

    Example: ``base_url = wait_until_ready(launched.job_id, timeout=900).base_url``
    """
    client = get_client(cluster_block)
    try:
        ready = client.wait_until_ready(job_id, timeout=timeout, poll_interval=poll_interval)
    except ServerError as error:
        model = _model_of(client, job_id)
        emit_server_event("failed", job_id, model, reason=str(error))
        raise
    emit_server_event("ready", job_id, ready.model_name, base_url=ready.base_url, node=ready.node)
    logger.info("%s (job %s) is ready at %s", ready.model_name, job_id, ready.base_url)
    return ready


def _model_of(client: ServerClient, job_id: str) -> str:
    try:
        return client.status(job_id).model_name
    except Exception:
        return "unknown"


@task(
    name="collect-metrics",
    task_run_name=_task_run_label("metrics", "job_id"),
    retries=3,
    retry_delay_seconds=[1, 3, 5],
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def collect_metrics(job_id: str, cluster_block: str | SlurmCluster | None = None) -> dict[str, Any]:
    """Scrape the server's metrics once (throughput, latency, request counts) as a plain dict.

    The raw Prometheus snapshot is left out: it is hundreds of series, and a flow's result and
    its summary table should hold the figures people read, not the scrape.

    Example: ``metrics = collect_metrics(launched.job_id)``
    """
    metrics = get_client(cluster_block).metrics(job_id)
    if hasattr(metrics, "model_dump"):
        dumped: dict[str, Any] = metrics.model_dump(mode="json", exclude={"snapshot"})
        return dumped
    if isinstance(metrics, Mapping):
        return dict(metrics)
    return {"metrics": metrics}


def release_server(
    job_id: str, cluster_block: str | SlurmCluster | None = None, timeout: float = 30.0
) -> bool:
    """Shut a server down with a plain client call: no Prefect API, bounded time, never raises.

    This is what ``finally`` blocks and crash hooks call, so teardown works while the API is
    unreachable or the process is being terminated.
    """
    outcome: dict[str, BaseException | None] = {"error": None}
    model = "unknown"

    def cancel() -> None:
        nonlocal model
        try:
            client = get_client(cluster_block)
            client.shutdown(job_id)
            model = _model_of(client, job_id)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=cancel, name=f"release-{job_id}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        logger.error("shutdown of job %s did not finish within %.0f s", job_id, timeout)
        return False
    if outcome["error"] is not None:
        logger.error("shutdown of job %s failed: %s", job_id, outcome["error"])
        return False
    emit_server_event("shutdown", job_id, model)
    logger.info("shut down job %s", job_id)
    return True


@task(
    name="shutdown-server",
    task_run_name=_task_run_label("shutdown", "job_id"),
    retries=3,
    retry_delay_seconds=[1, 3, 5],
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def shutdown_server(job_id: str, cluster_block: str | SlurmCluster | None = None) -> list[str]:
    """Cancel a server's job (idempotent: an ended job is not an error). Emits the shutdown event.

    Example: ``shutdown_server(launched.job_id)``; in ``finally`` prefer ``release_server``.
    """
    client = get_client(cluster_block)
    cancelled = client.shutdown(job_id)
    emit_server_event("shutdown", job_id, _model_of(client, job_id))
    return cancelled


# --- workloads -----------------------------------------------------------------------------------


def resolve_callable(path: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"package.module:function"`` (JSON-able, for deployments) or a callable as is."""
    if callable(path):
        return path
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"Workload {path!r} is not of the form 'package.module:function'.")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"Cannot import workload {path!r}: {error}.") from error
    if not callable(target):
        raise ConfigError(f"Workload {path!r} is not callable.")
    return target  # type: ignore[no-any-return]


def _as_summary(result: Any) -> dict[str, Any]:
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    if not isinstance(result, Mapping):
        return {"result": result}
    return json.loads(json.dumps(dict(result), default=str))  # type: ignore[no-any-return]


def _chunk_label() -> str:
    params = runtime_task_run.parameters
    chunk = params.get("chunk")
    index = getattr(chunk, "index", None) if chunk is not None else None
    return f"chunk-{params.get('model_name')}-{index if index is not None else 'all'}"


@task(
    name="run-workload-chunk",
    task_run_name=_chunk_label,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def run_workload_chunk(
    base_url: str,
    model_name: str,
    dataset: str,
    output_path: str,
    chunk: Chunk | None = None,
    api_key: str | None = None,
    progress_label: str | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> dict[str, Any]:
    """Send one chunk of a dataset (hundreds to thousands of requests) in one task run.

    Safe to retry: results are appended to ``output_path`` keyed by request id, and requests
    already recorded there are skipped, so nothing is sent twice. With ``progress_label``, every
    finished request is reported to ``vec_inf_flows.progress`` as ``done_before`` plus this
    chunk's count, out of ``total`` (the whole dataset), so a listener draws one bar per dataset.

    Example: ``for chunk in iter_chunks("prompts.jsonl", 500):
    run_workload_chunk(ready.base_url, "model", "prompts.jsonl", "out.jsonl", chunk)``
    """

    def report(done: Progress) -> None:
        if progress_label is not None:
            progress.notify(progress_label, done_before + done.done, total)

    summary = run_chunk(
        dataset,
        output_path,
        [base_url],
        chunk=chunk,
        options=RunOptions(model=model_name, api_key=api_key, deadline_s=CHUNK_DEADLINE_S),
        on_progress=report,
    )
    return _as_summary(summary)


@task(
    name="run-workload",
    task_run_name=_task_run_label("workload", "model_name"),
    tags=["vec-inf", "workload"],
    timeout_seconds=6 * 3600,
    cache_policy=NO_CACHE,
)
def run_workload(
    base_url: str, model_name: str, workload: str | Callable[..., Any]
) -> dict[str, Any]:
    """Run a whole workload callable ``(base_url, model_name) -> dict`` against a ready server.

    Example: ``run_workload(ready.base_url, "model", "my_pkg.evals:run")``
    """
    return _as_summary(resolve_callable(workload)(base_url, model_name))


def server_is_ready(status: StatusResponse) -> bool:
    return status.server_status is ServerStatus.READY and bool(status.base_url)
