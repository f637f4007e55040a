"""evaluate: models × datasets (and lm-eval tasks), servers started in parallel under a GPU budget.

Each model runs in its own worker thread: launch, wait, every dataset, its lm-eval tasks,
metrics, shutdown. A model
that fails (to start or later) becomes rows saying why; the others carry on. The run is FAILED
when any model/dataset pair failed, with the pairs and their reasons as its message. Every run
writes to a folder of its own and is filed in its evaluation's history; a score that fell since
the previous run emits ``vec-inf.eval.regression``.
"""

import contextvars
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.runtime import deployment as runtime_deployment
from prefect.runtime import flow_run as runtime_flow_run

from vec_inf_flows.blocks import SlurmCluster
from vec_inf_flows.catalog.options import LaunchOptions, merge_options
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals.checks import check_lm_eval_scale
from vec_inf_flows.evals.models import LmEvalSpec
from vec_inf_flows.evals.run_folder import (
    check_distinct,
    check_name,
    dataset_labels,
    default_root,
    results_path,
    run_folder,
    safe_name,
)
from vec_inf_flows.flows._evaluation import (
    DatasetJob,
    ModelServer,
    RunRecord,
    Settings,
    Timing,
    evaluate_model,
    failure_summary,
    file_run,
    publish_summary,
)
from vec_inf_flows.flows._inputs import check_parameters
from vec_inf_flows.flows._lm_eval import LM_EVAL_DIR, LmEvalJob
from vec_inf_flows.flows._logging import enable_library_logs
from vec_inf_flows.flows._serving import failed_run, run_name
from vec_inf_flows.lifecycle.lease import LeasePolicy
from vec_inf_flows.replicas.budget import SharedBudget
from vec_inf_flows.replicas.scale import RouterChoice, Scale
from vec_inf_flows.results import EvaluationRow
from vec_inf_flows.scoring import scorer_for
from vec_inf_flows.tasks.blocks import load_cluster
from vec_inf_flows.tasks.leases import DEFAULT_LEASE
from vec_inf_flows.tasks.ownership import launched_servers, teardown_hook

logger = logging.getLogger("vec_inf_flows")
EngineChoice = Literal["vllm", "sglang", "sim"]
DEFAULT_EVALUATION = "default"


def resolve_evaluation_name(given: str | None) -> str:
    """The name given, else the deployment's (runs of one deployment share a history)."""
    if given:
        return check_name(given)
    deployed = runtime_deployment.name
    return check_name(deployed) if deployed else DEFAULT_EVALUATION


@flow(
    name="evaluate",
    flow_run_name=run_name("evaluate", "models"),
    on_crashed=[teardown_hook],
    on_cancellation=[teardown_hook],
)
def evaluate(
    models: list[str],
    datasets: list[str] | None = None,
    engine: EngineChoice | None = None,
    output_dir: str | None = None,
    cluster: SlurmCluster | str | None = None,
    launch_options: LaunchOptions | None = None,
    model_options: dict[str, LaunchOptions] | None = None,
    max_parallel_servers: int = 2,
    gpu_limit_name: str | None = None,
    chunk_size: int = 500,
    min_success_ratio: float = 0.0,
    ready_timeout: float = 1800.0,
    poll_interval: float = 2.0,
    lease: LeasePolicy = DEFAULT_LEASE,
    evaluation_name: str | None = None,
    scorers: dict[str, str] | None = None,
    regression_threshold: float = 0.05,
    retry_failed: bool = False,
    batch_output: bool = False,
    replicas: int = 1,
    router: RouterChoice = "none",
    elastic: bool = False,
    max_gpus: int | None = None,
    max_concurrent_replicas: int | None = None,
    lm_eval: LmEvalSpec | None = None,
) -> list[EvaluationRow]:
    """Evaluate every model on every dataset; one summary row per pair, and a table artifact.

    Servers start in parallel, at most ``max_parallel_servers`` at once; a model that fails
    does not stop the others. The run is FAILED if any pair failed (the server did not start,
    or too few of the dataset's requests succeeded), with every failed pair and why in its
    message. Records with an ``expected`` or ``reference`` are scored; each pair's mean score
    is compared with the previous run of the same evaluation.

    Args:
        models: Models to evaluate, as the catalog names them (each once).
        datasets: JSONL or CSV files of requests (or OpenAI Batch files); each model runs
            every one. May be empty when lm_eval is given.
        engine: Inference engine for every model: vllm, sglang or sim; default: the catalog's.
        output_dir: Root folder of evaluations: a run writes to
            OUTPUT_DIR/EVALUATION/START-RUN_ID/ (start in UTC) and appends to
            OUTPUT_DIR/EVALUATION/history.jsonl; default: ~/.vec-inf-flows/evaluations.
        cluster: Cluster block (or its name) to launch on; default: this machine's defaults.
        launch_options: Launch options for every model, laid over the cluster's.
        model_options: Options for one model alone, by model name, laid over launch_options.
        max_parallel_servers: Most models served at once (each by a server or a group).
        gpu_limit_name: A Prefect global concurrency limit to hold one slot of per server
            (per replica with replicas), shared with other runs.
        chunk_size: Requests per task run.
        min_success_ratio: Fraction of a dataset's requests that must succeed for its row to
            be ok; a dataset where none succeeded fails whatever this says.
        ready_timeout: Seconds to wait for each server to become READY.
        poll_interval: Longest pause between two status checks while waiting, in seconds.
        lease: How often this run renews its servers' lease and how long a server waits for a
            renewal before it stops by itself (default: every 60 s, lapsing after 300 s): if
            the process running this flow dies (SIGKILL, a lost worker machine), its servers
            end within the lapse.
        evaluation_name: Name of this evaluation (its folder, history and artifact key);
            runs of one name are compared. Default: the deployment's name, else "default".
        scorers: Scorer per dataset (by its path as listed, or its file name): exact_match,
            contains, regex, regex:PATTERN, numeric, numeric:TOLERANCE, embedding_cosine, or
            "package.module:function". Default: auto (exact_match for text, embedding_cosine
            for embeddings).
        regression_threshold: Drop of a pair's mean score (0 to 1) against the previous run of
            this evaluation that emits a vec-inf.eval.regression event.
        retry_failed: On a retry of this flow run, send the requests that failed again
            (the answered ones are kept).
        batch_output: Also write each results file in the OpenAI Batch output format, as
            DATASET.results.batch.jsonl beside it.
        replicas: Serve each model from this many independent jobs (a replica group): work
            starts on its first READY replica, the others join as they come, one that dies is
            replaced (once per replica) and its requests go to the others.
        router: One OpenAI-compatible endpoint in front of each group (vllm-router): its own
            CPU job, a local process, or none (the runner spreads requests itself).
        elastic: Size each group by its backlog, up to ``replicas``: add replicas while the
            backlog is deep and the budget allows, release them as it drains (the room goes
            to the other models).
        max_gpus: GPUs all models' replicas may hold at once (the run's GPU budget).
        max_concurrent_replicas: Replicas all models may have queued or running at once.
        lm_eval: lm-evaluation-harness tasks to run against each model's server after its
            datasets (offline: bundled tasks vec_inf_qa_gen and vec_inf_qa_mc, task YAMLs with
            local data, or built-in tasks whose data is local). One row per model and task,
            dataset "lm-eval:TASK", scored by the task's primary metric (acc for multiple
            choice, exact_match for generation) or by lm_eval.metric where the task reports
            it; lm-eval's files go to the run's folder,
            under MODEL/lm-eval/. With replicas, lm-eval talks to the group's router.
    """
    output_dir = output_dir or str(default_root())
    datasets = list(datasets or [])
    check_parameters(locals())  # before anything is launched (lm_eval's tasks too)
    check_distinct(models, datasets)
    enable_library_logs()
    if not models or not (datasets or lm_eval):
        raise ConfigError("evaluate needs at least one model, and datasets or lm_eval tasks.")
    if max_parallel_servers < 1:
        raise ConfigError("max_parallel_servers must be at least 1.")
    scale = Scale(replicas, router, elastic, None, max_gpus, max_concurrent_replicas)
    scale.check()
    if lm_eval is not None:
        check_lm_eval_scale(scale)
    name = resolve_evaluation_name(evaluation_name)
    run_id = str(runtime_flow_run.id or uuid.uuid4())
    started = datetime.now(UTC)
    root = Path(output_dir).expanduser().resolve()  # the history names folders absolutely
    folder = run_folder(root, name, run_id, started)
    logger.info("evaluation %s: results in %s", name, folder)
    record = RunRecord(name, root, folder, run_id, started)
    labels = dataset_labels(datasets)
    settings = Settings(chunk_size, min_success_ratio, retry_failed, batch_output)
    timing = Timing(ready_timeout, poll_interval)
    where = load_cluster(cluster)
    budget = None
    if max_gpus is not None or max_concurrent_replicas is not None:
        budget = SharedBudget(max_gpus, max_concurrent_replicas)
    shared = merge_options(launch_options, {"engine": engine} if engine else None)
    rows: list[EvaluationRow] = []
    # Not a ``with`` block: leaving one would wait for every worker thread before teardown.
    pool = ThreadPoolExecutor(max_parallel_servers, thread_name_prefix="evaluate")
    with launched_servers(where, lease) as servers:
        try:
            futures = [
                # Each thread runs in a copy of the run context: its task runs belong to this run.
                pool.submit(
                    contextvars.copy_context().run,
                    evaluate_model,
                    ModelServer(
                        servers,
                        model,
                        merge_options(shared, (model_options or {}).get(model)),
                        timing,
                        scale,
                        budget,
                    ),
                    [
                        DatasetJob(
                            dataset,
                            scorer_for(dataset, scorers),
                            results_path(folder, model, labels[dataset]),
                        )
                        for dataset in datasets
                    ],
                    settings,
                    gpu_limit_name,
                    lm_eval=(
                        LmEvalJob(lm_eval, folder / safe_name(model) / LM_EVAL_DIR)
                        if lm_eval
                        else None
                    ),
                )
                for model in models
            ]
            for future in futures:
                rows.extend(future.result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    rows, fallen = file_run(record, rows, regression_threshold)
    tasks = len(lm_eval.tasks) if lm_eval else 0
    publish_summary(record, rows, len(models), len(datasets) + tasks, len(fallen))
    failed = sum(row.status != "ok" for row in rows)
    if failed:
        failures = failure_summary(rows)
        return failed_run(f"{failed} of {len(rows)} model/dataset pairs failed: {failures}", rows)
    return rows
