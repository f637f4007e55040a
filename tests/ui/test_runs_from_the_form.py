"""Runs started the way a person starts them in the Prefect UI: the deployment's Run form filled
in and submitted by the browser (a block picked, the engine chosen, a launch option typed), run
by the real process worker on the local Slurm cluster with the simulator; then the run's table
artifacts read back from their rendered pages and compared, cell by cell, with the tables of
what the flow returned.

The screenshots of the filled form and of the evaluation table are the README's pictures
(``VEC_INF_UI_SCREENSHOTS=docs/ui`` writes them there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy_helpers import Deployed, returned_value, wait_until, write_prompts
from prefect_ui import Blocks, PrefectUI, RenderedTable, RunForm

from vec_inf_flows.presentation import evaluation_table, key_value, metrics_table, workload_rows
from vec_inf_flows.results import EvaluationRow, ServeResult

MODEL = "SmolLM2-135M-Instruct"
TIME = "00:10:00"


def run_on_the_cluster(form: RunForm, blocks: Blocks) -> None:
    """What every run here picks: the simulator engine, the test's cluster block, a short
    Slurm time limit typed into the launch options."""
    form.choose_type("engine", type_name="str")
    form.select("engine", option="sim")
    form.choose_type("cluster", type_name="SlurmCluster")
    form.select("cluster", option=blocks.cluster)
    form.fill("launch_options", "Time", value=TIME)


def completed(deployed: Deployed, run_id: str) -> dict[str, Any]:
    run = deployed.api.wait_final(run_id)
    assert run["state_type"] == "COMPLETED", (
        f"{run['state']}\n--- worker log ---\n{deployed.worker.log.read_text()[-4000:]}"
    )
    wait_until(lambda: not deployed.worker.jobs_in_squeue(), 30, "the run's jobs to leave squeue")
    return run


def assert_submitted_as_typed(run: dict[str, Any], blocks: Blocks) -> None:
    parameters = run["parameters"]
    assert parameters["engine"] == "sim"
    assert parameters["cluster"] == {"$ref": {"block_document_id": blocks.cluster_id}}
    assert parameters["launch_options"]["time"] == TIME


QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 2 + 2?", "4"),
    ("What colour is the sky?", "blue"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_an_evaluation_submitted_from_the_form_completes_and_its_table_renders(
    deployed: Deployed, ui: PrefectUI, blocks: Blocks, tmp_path: Path, screenshots: Path
) -> None:
    """Questions with references, and a simulator told (in the form's Vllm Args) to answer three
    of the four right: the rendered table must show the score 0.750."""
    dataset = write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": f"q{n}", "prompt": question, "expected": answer, "max_tokens": 8}
            for n, (question, answer) in enumerate(QUESTIONS)
        ],
    )
    book = write_jsonl(
        tmp_path / "answers.jsonl",
        [
            {"prompt": question, "answer": answer if n < 3 else "no idea"}
            for n, (question, answer) in enumerate(QUESTIONS)
        ],
    )
    results = tmp_path / "results"
    form = ui.run_form(deployed.deployment_id("evaluate/nightly"))
    form.fill("datasets", value=dataset, item=0)  # over the shipped placeholder
    form.choose_type("output_dir", type_name="str")
    form.fill("output_dir", value=str(results))
    run_on_the_cluster(form, blocks)
    form.choose_type("launch_options", "Vllm Args", type_name="str")
    form.fill("launch_options", "Vllm Args", value=f"--sim-answers={book}")
    ui.screenshot(screenshots / "evaluate-form.png", height=1500)

    run = completed(deployed, form.submit())

    assert_submitted_as_typed(run, blocks)
    assert run["parameters"]["datasets"] == [dataset]
    rows: list[EvaluationRow] = returned_value(run)
    artifact = deployed.api.artifact(run["id"], "vec-inf-evaluation-nightly")
    shown = ui.artifact_table(artifact["id"])
    ui.screenshot(screenshots / "evaluation-artifact.png", width=1900, height=420)
    # Every column the flow's table has ...
    assert shown == RenderedTable.of(evaluation_table(rows))
    # ... and what a person reads off the page, known without the flow: one line per column.
    assert shown.column("Model") == [MODEL]
    assert shown.column("Dataset") == [dataset]
    assert shown.column("Status") == ["ok"]
    assert shown.column("OK") == ["4"]
    assert shown.column("Failed") == ["0"]
    assert shown.column("Score") == ["0.750"]
    assert shown.column("Job") == [rows[0].job_id] and rows[0].job_id in deployed.worker.job_ids()


def test_an_on_demand_run_submitted_from_the_form_completes_and_its_tables_render(
    deployed: Deployed, ui: PrefectUI, blocks: Blocks, tmp_path: Path
) -> None:
    dataset = write_prompts(tmp_path / "prompts.jsonl", 5)
    output = tmp_path / "answers.jsonl"
    form = ui.run_form(deployed.deployment_id("serve-and-run/on-demand"))
    form.choose_type("dataset", type_name="str")
    form.fill("dataset", value=dataset)
    form.choose_type("output", type_name="str")
    form.fill("output", value=str(output))
    run_on_the_cluster(form, blocks)

    run = completed(deployed, form.submit())

    assert_submitted_as_typed(run, blocks)
    assert ui.run_state(run["id"]) == "Completed"
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(record["id"] for record in records) == [f"p{i}" for i in range(5)]
    result: ServeResult = returned_value(run)
    assert result.workload is not None and result.metrics is not None
    workload = ui.artifact_table(
        deployed.api.artifact(run["id"], "vec-inf-workload-smollm2-135m-instruct-prompts")["id"]
    )
    assert workload == RenderedTable.of(key_value("Workload", workload_rows(result.workload)))
    assert workload.value("Requests") == "5" and workload.value("Succeeded") == "5"
    assert workload.value("Output") == str(output)
    metrics = ui.artifact_table(
        deployed.api.artifact(run["id"], "vec-inf-metrics-smollm2-135m-instruct")["id"]
    )
    assert metrics == RenderedTable.of(metrics_table(result.metrics))
