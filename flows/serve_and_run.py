"""Recipe: your own serve-and-run pipeline, composed from the library's tasks.

Deploy it like any flow (``prefect deploy flows/serve_and_run.py:my_serve_and_run``) or run it
directly: ``python flows/serve_and_run.py SmolLM2-135M-Instruct prompts.jsonl``.
"""

import sys
from typing import Any

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
) -> dict[str, Any]:
    launched = launch_server(model_name, {"time": "01:00:00"})
    try:  # teardown in finally, as a plain call: it must not need the Prefect API
        ready = wait_until_ready(launched.job_id, timeout=1800)
        assert ready.base_url is not None
        done = [
            run_workload_chunk(ready.base_url, model_name, dataset, output, chunk)
            for chunk in iter_chunks(dataset, chunk_size)
        ]
        return {"ok": sum(s["ok"] for s in done), "metrics": collect_metrics(launched.job_id)}
    finally:
        release_server(launched.job_id)


if __name__ == "__main__":
    my_serve_and_run(sys.argv[1], sys.argv[2])
