"""``vec-inf-flows run FLOW``: run a flow in-process, or trigger a deployment.

This is the only command that imports Prefect, and it does so inside the function.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from vec_inf_flows.errors import ConfigError

FLOWS = {
    "serve-and-run": "vec_inf_flows.flows.serve_and_run:serve_and_run",
    "evaluate": "vec_inf_flows.flows.evaluate:evaluate",
    "batch-serve": "vec_inf_flows.flows.batch_serve:batch_serve",
    "cleanup": "vec_inf_flows.flows.cleanup:cleanup",
}


def add_run_command(
    commands: Any, add_launch_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    run = commands.add_parser(
        "run",
        help="Run a flow (serve-and-run, evaluate, batch-serve, cleanup).",
        description="Run a flow in this process, or trigger a deployment with --deployment.",
    )
    run.add_argument("flow", metavar="FLOW", choices=sorted(FLOWS))
    run.add_argument("--model", dest="model_name", help="Model to serve (serve-and-run).")
    run.add_argument("--models", help="Comma-separated models (evaluate, batch-serve).")
    run.add_argument("--job-id", help="Attach to this READY server instead of launching one.")
    run.add_argument("--input", dest="dataset", help="JSONL/CSV file of requests.")
    run.add_argument("--datasets", help="Comma-separated request files (evaluate).")
    run.add_argument("--output", help="Output JSONL file (one record per request).")
    run.add_argument("--output-dir", help="Directory for result files.")
    run.add_argument("--chunk-size", type=int, help="Requests per task run.")
    run.add_argument("--max-concurrent-servers", type=int, help="GPU budget (evaluate).")
    run.add_argument("--ready-timeout", type=float, help="Seconds to wait for READY.")
    run.add_argument(
        "--min-success-ratio",
        type=float,
        help="Fraction of requests that must succeed for the run to be COMPLETED "
        "(a run where none succeeded is FAILED anyway).",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="Send again the requests the output records as failed; keep the answered ones.",
    )
    run.add_argument(
        "--scorer",
        help="Score records that have an 'expected'/'reference': exact_match, contains, regex, "
        "numeric[:TOL], embedding_cosine or package.module:function (default: auto).",
    )
    run.add_argument(
        "--batch-output",
        action="store_true",
        default=None,
        help="Also write the results in the OpenAI Batch output format (<output>.batch.jsonl).",
    )
    _add_lm_eval_options(run)
    run.add_argument("--dry-run", action="store_true", default=None, help="cleanup: only report.")
    run.add_argument(
        "--lease-renew",
        type=float,
        metavar="SECONDS",
        help="How often the run renews its servers' lease (default 60).",
    )
    run.add_argument(
        "--lease-lapse",
        type=float,
        metavar="SECONDS",
        help="A server whose lease was not renewed for this long stops by itself (default "
        "300): what a killed run or a lost worker machine costs at most.",
    )
    run.add_argument("--cluster-block", help="Name of a saved SlurmCluster block.")
    run.add_argument("--server-block", help="Name of a saved model-server block.")
    run.add_argument(
        "--backend",
        choices=["auto", "slurm", "local"],
        help="Where jobs run (in-process runs; a deployment takes it from its cluster block).",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any flow parameter; VALUE is parsed as JSON when it can be.",
    )
    run.add_argument(
        "--deployment", help="Trigger this deployment (FLOW/NAME) on a Prefect server."
    )
    run.add_argument("--json-mode", action="store_true", help="Print the result as JSON.")
    add_launch_options(run)
    from vec_inf_flows.cli.replica_flags import add_replica_options

    add_replica_options(run, flows=True)


def _add_lm_eval_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--lm-eval-task",
        action="append",
        dest="lm_eval_tasks",
        metavar="TASK",
        help="evaluate: run this lm-eval task against each model's server (repeatable): "
        "vec_inf_qa_gen, vec_inf_qa_mc, a task of --lm-eval-include, or a built-in one.",
    )
    run.add_argument("--lm-eval-limit", type=int, help="At most this many docs per lm-eval task.")
    run.add_argument("--lm-eval-fewshot", type=int, help="Few-shot examples per lm-eval doc.")
    run.add_argument("--lm-eval-include", help="A folder of lm-eval task YAMLs (local data).")
    run.add_argument(
        "--lm-eval-metric",
        metavar="NAME[,FILTER]",
        help="Score lm-eval rows by this metric where a task reports it (acc_norm, "
        "exact_match,strict-match); default: acc, else exact_match.",
    )
    run.add_argument(
        "--lm-eval-chat-template",
        action="store_true",
        default=None,
        help="Wrap lm-eval's prompts in the model's chat template (instruct models).",
    )


def lm_eval_parameter(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``lm_eval`` flow parameter from the ``--lm-eval-*`` flags (None without them)."""
    fields = {
        "tasks": args.lm_eval_tasks,
        "limit": args.lm_eval_limit,
        "num_fewshot": args.lm_eval_fewshot,
        "include_path": args.lm_eval_include,
        "apply_chat_template": args.lm_eval_chat_template,
        "metric": args.lm_eval_metric,
    }
    given = {key: value for key, value in fields.items() if value is not None}
    if not given:
        return None
    if args.flow != "evaluate":
        raise ConfigError("--lm-eval-* options apply to the evaluate flow only.")
    if "tasks" not in given:
        raise ConfigError("--lm-eval-* options need at least one --lm-eval-task.")
    return given


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE.")
        try:
            params[key.replace("-", "_")] = json.loads(raw)
        except ValueError:
            params[key.replace("-", "_")] = raw
    return params


def flow_parameters(args: argparse.Namespace, launch_options: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    simple = (
        "model_name", "job_id", "dataset", "output", "output_dir", "chunk_size",
        "ready_timeout", "dry_run", "min_success_ratio", "retry_failed", "batch_output",
        "replicas", "router", "elastic", "max_gpus", "max_concurrent_replicas",
    )  # fmt: skip
    for name in simple:
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    if args.cluster_block:
        params["cluster"] = args.cluster_block
    if args.server_block:
        params["server"] = args.server_block
    if args.max_concurrent_servers is not None:
        params["max_parallel_servers"] = args.max_concurrent_servers
    if args.models:
        params["models"] = _split(args.models)
    if args.datasets:
        params["datasets"] = _split(args.datasets)
    if args.scorer and args.flow == "evaluate":  # the same scorer for every dataset
        params["scorers"] = {dataset: args.scorer for dataset in params.get("datasets", ())}
    elif args.scorer:
        params["scorer"] = args.scorer
    if launch_options:
        params["launch_options"] = launch_options
    lm_eval = lm_eval_parameter(args)
    if lm_eval is not None:
        params["lm_eval"] = lm_eval
    lease = _lease(args.lease_renew, args.lease_lapse)
    if lease is not None:
        params["lease"] = lease
    params.update(_parse_params(args.param))
    return params


def _lease(renew: float | None, lapse: float | None) -> dict[str, float] | None:
    if renew is None and lapse is None:
        return None
    from vec_inf_flows.lifecycle.lease import DEFAULT_LAPSE_AFTER, DEFAULT_RENEW_EVERY

    return {
        "renew_every": DEFAULT_RENEW_EVERY if renew is None else renew,
        "lapse_after": DEFAULT_LAPSE_AFTER if lapse is None else lapse,
    }


def check_lease(flow: str, params: dict[str, Any]) -> None:
    """A lease (``--lease-*`` or ``--param lease=...``) is checked in one line, before Prefect
    starts; only flows that launch servers take one."""
    if "lease" not in params:
        return
    if flow == "cleanup":
        raise ConfigError("--lease-renew / --lease-lapse: the cleanup flow launches no server.")
    from pydantic import ValidationError

    from vec_inf_flows.lifecycle.lease import LeasePolicy

    try:
        LeasePolicy.model_validate(params["lease"])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"lease{'.' + where if where else ''}: {first['msg']}") from None


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def run_command(args: argparse.Namespace, launch_options: dict[str, Any], console: Any) -> int:
    params = flow_parameters(args, launch_options)
    check_lease(args.flow, params)
    if "api_key" in launch_options:
        raise ConfigError(
            "An API key cannot be passed as a flow parameter (it would be stored in the run); "
            "put it in a model-server block and use --server-block."
        )
    if args.deployment:
        if args.backend:
            raise ConfigError(
                "--backend applies to in-process runs; a deployment runs where its cluster "
                "block says (--cluster-block)."
            )
        return _trigger_deployment(args.deployment, params, console, args.json_mode)
    check_inputs(params, args.backend)
    if args.backend:
        params["cluster"] = cluster_for_backend(args.backend, params.get("cluster"))
    return _run_in_process(args.flow, params, console, args.json_mode)


def cluster_for_backend(backend: str, cluster: Any) -> Any:
    """A cluster block that runs jobs on ``backend``: the named one with its backend replaced,
    or a new unsaved one. Passed to the flow as an object: no environment variable is set."""
    from vec_inf_flows.blocks import SlurmCluster
    from vec_inf_flows.tasks.blocks import load_cluster

    loaded = load_cluster(cluster)
    if loaded is None:
        return SlurmCluster.model_validate({"backend": backend})
    return loaded.model_copy(update={"backend": backend})


def check_inputs(params: dict[str, Any], backend: str | None = None) -> None:
    """Refuse bad input in one line before Prefect starts, rather than as a failed flow run:
    missing request files, unknown models, invalid launch options, an unknown job id, lm-eval
    tasks nobody defines."""
    from vec_inf_flows.evals.run_folder import check_distinct
    from vec_inf_flows.replicas.scale import Scale
    from vec_inf_flows.scoring import check_scorer
    from vec_inf_flows.workload.checks import check_dataset, check_output_file, check_work

    check_work(params.get("dataset"), params.get("workload"), params.get("output"))
    check_distinct(params.get("models") or (), params.get("datasets") or ())
    check_scorer(params.get("scorer"))
    for spec in (params.get("scorers") or {}).values():
        check_scorer(spec)
    scale = Scale.of(params)
    scale.check(params.get("workload"), params.get("job_id"))
    if params.get("lm_eval") is not None:
        from vec_inf_flows.evals.checks import check_lm_eval, check_lm_eval_scale

        check_lm_eval_scale(scale)
        check_lm_eval(params["lm_eval"])  # lm-eval installed, the task folder, task names
    for name in (params.get("dataset"), *params.get("datasets", ())):
        if name is not None:
            check_dataset(name)
    if params.get("output") is not None:
        check_output_file(params["output"])
    models = [params["model_name"]] if params.get("model_name") else list(params.get("models", ()))
    if models:
        from vec_inf_flows.catalog.options import LaunchOptions
        from vec_inf_flows.catalog.resolve import resolve

        options = LaunchOptions.model_validate(params.get("launch_options") or {})
        for model in models:
            resolve(model, options)  # unknown model (with suggestions), bad values: ConfigError
    if params.get("job_id"):
        from vec_inf_flows.client import VecInfClient

        VecInfClient(backend=backend).status(str(params["job_id"]))  # unknown id: one line


def load_flow(flow: str) -> Any:
    import importlib

    module_name, _, attribute = FLOWS[flow].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _run_in_process(flow: str, params: dict[str, Any], console: Any, json_mode: bool) -> int:
    from vec_inf_flows.cli.prefect_server import api_for_run

    flow_fn = load_flow(flow)
    from vec_inf_flows.cli.run_report import report, run_with_progress

    with api_for_run(console):  # without a configured server: one that dies with this process
        state, run_id = run_with_progress(flow_fn, params, console)
        return report(console, flow, state, run_id, json_mode)


def _trigger_deployment(name: str, params: dict[str, Any], console: Any, json_mode: bool) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("--deployment needs a Prefect server: set PREFECT_API_URL.")
    from prefect.deployments import run_deployment

    from vec_inf_flows.cli.run_report import ui_url

    flow_run: Any = run_deployment(name=name, parameters=params, timeout=0)  # sync here
    url = ui_url(str(flow_run.id))
    if json_mode:
        print(json.dumps({"flow_run_id": str(flow_run.id), "ui_url": url}))
    else:
        console.print(f"Triggered deployment {name}: flow run {flow_run.id}")
        if url:
            console.print(f"View it at {url}")
    return 0
