"""When a task may try again: only after faults that can pass and never at the price of a
second job."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from vec_inf_flows.errors import ServerError, SlurmError, SlurmTransientError

logger = logging.getLogger("vec_inf_flows")


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


# The task settings the tasks modules share, by what retrying each kind may cost.
# No ``timeout_seconds`` on the tasks ``evaluate`` runs in worker threads: there a Prefect
# timeout interrupts nothing and logs a warning per task run. They bound themselves instead: each
# Slurm command has a hard timeout per attempt (sbatch 150 s, the others 30 s) and a few
# attempts, each HTTP call a timeout of seconds, ``wait_until_ready`` its timeout, a chunk
# ``CHUNK_DEADLINE_S`` (tasks/workload.py).
#
# A submission: retried only after a fault that left no job behind; a handle holds the key,
# so its result is never persisted.
SUBMISSION: dict[str, Any] = {
    "tags": ["vec-inf", "gpu-job"],
    "retries": 2,
    "retry_delay_seconds": [5, 20],
    "retry_condition_fn": retry_launch,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}

# A wait is a read: any transient fault may be retried.
WAITING: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 5, 10],
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}

# Scrapes and cancels are safe to repeat: a few quick retries on transient faults.
SHORT_AND_REPEATABLE: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 3, 5],
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,
}
