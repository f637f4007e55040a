"""When a task may try again: only after faults that can pass and never at the price of a
second job."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from prefect import Task
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
