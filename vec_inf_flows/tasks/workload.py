"""Tasks that send work to a READY server: one chunk of a dataset, or a whole workload callable.

The server's handle brings what the workload needs: its URL, its API key (sent as a bearer
token) and how many sequences it runs at once (the number of requests kept in flight).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from vec_inf_flows import progress
from vec_inf_flows.callables import import_callable
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.handle import ServerHandle
from vec_inf_flows.replicas.serving import ServingGroup
from vec_inf_flows.scoring import RecordScorer
from vec_inf_flows.tasks.naming import chunk_name, run_name
from vec_inf_flows.tasks.retries import retry_on_transient
from vec_inf_flows.workload.reader import Chunk
from vec_inf_flows.workload.replicas import Replica
from vec_inf_flows.workload.runner import RunOptions, run_chunk
from vec_inf_flows.workload.stats import ChunkSummary, Progress

Workload = str | Callable[..., Any]


# One chunk's requests, bounded by the workload's own deadline (it works from any thread, where
# a Prefect task timeout would not); a retry resumes where the chunk stopped.
CHUNK_DEADLINE_S = 3600.0


def replica_of(server: ServerHandle) -> Replica:
    if server.base_url is None:
        raise ConfigError(f"Server {server.job_id} has no URL yet: wait until it is READY.")
    return Replica(server.base_url, server.max_concurrent_sequences)


@task(
    name="run-workload-chunk",
    task_run_name=chunk_name,
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def run_workload_chunk(
    server: ServerHandle | ServingGroup,
    dataset: str,
    output_path: str,
    chunk: Chunk | None = None,
    progress_label: str | None = None,
    done_before: int = 0,
    total: int | None = None,
    scorer: str | None = None,
) -> ChunkSummary:
    """Send one chunk of a dataset (hundreds to thousands of requests) in one task run.

    Safe to retry: results are appended to ``output_path`` keyed by request id, and requests
    already recorded there are skipped, so nothing is sent twice. On a replica group the chunk
    runs on whichever replicas are READY, and on those that become READY while it runs.

    Args:
        server: Handle of a READY server (URL, key and concurrency come from it), or a
            replica group (``launch_replica_group``).
        dataset: JSONL or CSV file of requests.
        output_path: JSONL file of results, one record per request id.
        chunk: The part of the dataset to send (``iter_chunks``); None sends all of it.
        progress_label: If set, every finished request is reported to
            ``vec_inf_flows.progress`` under this label (the CLI's progress bar).
        done_before: Requests of the dataset finished before this chunk (for the bar).
        total: Requests in the whole dataset (for the bar).
        scorer: How records with an 'expected' or 'reference' are scored: exact_match,
            contains, regex, numeric, embedding_cosine, or "package.module:function";
            default: auto (exact_match for text, embedding_cosine for embeddings).

    Example: ``for chunk in iter_chunks("prompts.jsonl", 500):
    run_workload_chunk(server, "prompts.jsonl", "out.jsonl", chunk)``
    """

    def report(done: Progress) -> None:
        if progress_label is not None:
            progress.notify(progress_label, done_before + done.done, total)
        if isinstance(server, ServingGroup):  # an elastic group sizes itself by what is left
            server.note_progress(dataset, done_before + done.done, total)

    if isinstance(server, ServingGroup):
        replicas, membership = [], server.membership()
    else:
        replicas, membership = [replica_of(server)], None
    return run_chunk(
        dataset,
        output_path,
        replicas,
        chunk=chunk,
        options=RunOptions(
            model=server.model_name,
            api_key=server.bearer(),
            deadline_s=CHUNK_DEADLINE_S,
            scorer=RecordScorer.of(scorer),
        ),
        on_progress=report,
        membership=membership,
    )


def resolve_callable(path: Workload) -> Callable[..., Any]:
    """``"package.module:function"`` (JSON-able, for deployments) or a callable as is."""
    return path if callable(path) else import_callable(path, "Workload")


@task(
    name="run-workload",
    task_run_name=run_name("workload", "server"),
    tags=["vec-inf", "workload"],
    timeout_seconds=6 * 3600,
    cache_policy=NO_CACHE,
)
def run_workload(server: ServerHandle | ServingGroup, workload: Workload) -> dict[str, Any]:
    """Run a whole workload callable against a READY server; it gets the server's handle.

    Args:
        server: Handle of a READY server, or a replica group with a router (the callable gets
            a handle whose URL is the group's one endpoint).
        workload: ``"package.module:function"`` or a callable, called as ``function(server)``;
            whatever it returns (a mapping or a pydantic model) becomes a JSON-able summary.

    Example: ``run_workload(server, "my_pkg.evals:run")``
    """
    if isinstance(server, ServingGroup):
        server = server.endpoint_handle()
    result = resolve_callable(workload)(server)
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    if not isinstance(result, Mapping):
        result = {"result": result}
    return json.loads(json.dumps(dict(result), default=str))  # type: ignore[no-any-return]
