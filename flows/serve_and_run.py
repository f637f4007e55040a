"""Recipe: your own serve-and-run pipeline, composed from the library's tasks.

Deploy it like any flow (``prefect deploy flows/serve_and_run.py:my_serve_and_run``) or run it
directly: ``python flows/serve_and_run.py SmolLM2-135M-Instruct prompts.jsonl``.
"""

import sys

from prefect import flow

from vec_inf_flows.tasks import (
    collect_metrics,
    launch_server,
    release_server,
    run_workload_chunk,
    wait_until_ready,
)
from vec_inf_flows.workload.reader import iter_chunks


@flow(name="my-serve-and-run")
def my_serve_and_run(
    model_name: str, dataset: str, output: str = "results.jsonl", chunk_size: int = 500
) -> dict[str, float | int | None]:
    """Serve a model for an hour at most, send a dataset through it, report what it measured.

    Args:
        model_name: Model to serve, as the catalog names it.
        dataset: JSONL or CSV file of requests.
        output: JSONL file for the results, one record per request id.
        chunk_size: Requests per task run.
    """
    server = launch_server(model_name, {"time": "01:00:00"})
    try:  # teardown in finally, as a plain call: it must not need the Prefect API
        server = wait_until_ready(server, timeout=1800)
        done = [
            run_workload_chunk(server, dataset, output, chunk)
            for chunk in iter_chunks(dataset, chunk_size)
        ]
        metrics = collect_metrics(server)
        return {
            "ok": sum(summary.ok for summary in done),
            "failed": sum(summary.failed for summary in done),
            "generation_tokens_per_s": metrics.generation_throughput,
        }
    finally:
        release_server(server)


if __name__ == "__main__":
    print(my_serve_and_run(sys.argv[1], sys.argv[2]))
