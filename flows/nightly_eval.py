"""Recipe: a nightly evaluation that reuses the library's ``evaluate`` flow and adds a report.

Serve it on a schedule without a work pool:
``python flows/nightly_eval.py`` (keeps running; Ctrl-C stops it).
"""

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.catalog.options import LaunchOptions
from vec_inf_flows.flows import evaluate
from vec_inf_flows.results import EvaluationRow, WorkloadFailed


@flow(name="nightly-eval")
def nightly_eval(
    models: list[str],
    datasets: list[str],
    cluster: SlurmCluster | str | None = None,
    max_parallel_servers: int = 2,
) -> list[EvaluationRow]:
    """Evaluate the models on the datasets with a two-hour limit per server, and publish a
    one-line report of what failed.

    Args:
        models: Models to evaluate, as the catalog names them.
        datasets: JSONL or CSV files of requests.
        cluster: Cluster block (or its name) to launch on.
        max_parallel_servers: Most servers alive at once.
    """
    state = evaluate(
        models,
        datasets,
        max_parallel_servers=max_parallel_servers,
        cluster=cluster,
        launch_options=LaunchOptions(time="02:00:00"),
        return_state=True,
    )
    outcome = state.result(raise_on_failure=False)
    rows: list[EvaluationRow] = outcome.result if isinstance(outcome, WorkloadFailed) else outcome
    failed = sorted({row.model for row in rows if row.status != "ok"})
    create_markdown_artifact(
        key="nightly-eval-report",
        markdown=f"**{len(models) - len(failed)}/{len(models)} models evaluated.** "
        + (f"Failed: {', '.join(failed)}." if failed else "No failures."),
    )
    if isinstance(outcome, WorkloadFailed):
        raise outcome
    return rows


if __name__ == "__main__":
    nightly_eval.serve(
        name="nightly",
        cron="0 2 * * *",
        parameters={"models": ["SmolLM2-135M-Instruct"], "datasets": ["prompts.jsonl"]},
        pause_on_shutdown=False,
    )
