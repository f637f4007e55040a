"""Recipe: a nightly evaluation that reuses the library's ``evaluate`` flow and adds a report.

Serve it on a schedule without a work pool:
``python flows/nightly_eval.py`` (keeps running; Ctrl-C stops it).
"""

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from vec_inf_flows.blocks import LaunchOverrides
from vec_inf_flows.flows import evaluate


@flow(name="nightly-eval")
def nightly_eval(
    models: list[str],
    datasets: list[str],
    cluster_block: str | None = None,
    max_parallel_servers: int = 2,
) -> list[dict[str, Any]]:
    rows = evaluate(
        models,
        datasets,
        max_parallel_servers=max_parallel_servers,
        cluster_block=cluster_block,
        launch_options=LaunchOverrides(time="02:00:00"),
    )
    failed = sorted({row["model"] for row in rows if row["status"] != "ok"})
    create_markdown_artifact(
        key="nightly-eval-report",
        markdown=f"**{len(models) - len(failed)}/{len(models)} models evaluated.** "
        + (f"Failed: {', '.join(failed)}." if failed else "No failures."),
    )
    return rows


if __name__ == "__main__":
    nightly_eval.serve(
        name="nightly",
        cron="0 2 * * *",
        parameters={"models": ["SmolLM2-135M-Instruct"], "datasets": ["prompts.jsonl"]},
        pause_on_shutdown=False,
    )
