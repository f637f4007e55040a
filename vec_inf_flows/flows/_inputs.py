"""A flow's parameters checked at its first line, before any job is submitted.

Runs started from the UI, a schedule or ``run --deployment`` skip the CLI's checks, and the
paths they name are the worker's: so the flow checks them itself, where it runs. Each rule is
keyed by parameter name, so every flow that takes ``chunk_size`` or ``datasets`` gets the same
rule; names a flow does not have are simply absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.evals.checks import check_lm_eval
from vec_inf_flows.evals.run_folder import check_name
from vec_inf_flows.scoring import check_scorer, check_scorers
from vec_inf_flows.tasks import resolve_callable
from vec_inf_flows.workload.checks import (
    check_dataset,
    check_output_dir,
    check_output_file,
    check_work,
)

AT_LEAST_ONE = ("chunk_size", "max_parallel_servers")
NOT_NEGATIVE = ("relaunches", "regression_threshold")
POSITIVE = ("ready_timeout", "poll_interval")


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` on the first bad value: numbers out of range, a workload that does
    not import, datasets missing or unreadable, outputs that cannot be written, lm-eval tasks
    nobody defines. Call it as ``check_parameters(locals())``."""
    _check_numbers(parameters)
    check_work(parameters.get("dataset"), parameters.get("workload"), parameters.get("output"))
    if isinstance(parameters.get("workload"), str):  # 'package.module:function' importable
        resolve_callable(parameters["workload"])
    datasets = _datasets(parameters)
    check_scorer(parameters.get("scorer"))  # user scorers import, like the workload
    check_scorers(parameters.get("scorers"), datasets)
    if parameters.get("evaluation_name") is not None:
        check_name(parameters["evaluation_name"])
    check_lm_eval(parameters.get("lm_eval"))  # lm-eval installed, its task names known
    for dataset in datasets:
        check_dataset(dataset)
    output, output_dir = parameters.get("output"), parameters.get("output_dir")
    if output is not None:
        check_output_file(output, make_directory=True)  # as the run does
    if output_dir is not None:
        check_output_dir(output_dir)
    elif output is None:  # results are written next to each dataset
        for dataset in datasets:
            check_output_dir(Path(dataset).expanduser().parent)


def _datasets(parameters: Mapping[str, Any]) -> list[str]:
    found = list(parameters.get("datasets") or ())
    if parameters.get("dataset") is not None:
        found.append(parameters["dataset"])
    return [str(dataset) for dataset in found]


def _check_numbers(parameters: Mapping[str, Any]) -> None:
    for name in AT_LEAST_ONE:
        if name in parameters and parameters[name] < 1:
            raise ConfigError(f"{name} must be at least 1 (got {parameters[name]}).")
    for name in NOT_NEGATIVE:
        if name in parameters and parameters[name] < 0:
            raise ConfigError(f"{name} must not be negative (got {parameters[name]}).")
    for name in POSITIVE:
        if name in parameters and not parameters[name] > 0:
            raise ConfigError(f"{name} must be more than 0 (got {parameters[name]}).")
