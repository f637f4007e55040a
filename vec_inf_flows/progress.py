"""A process-wide progress channel: long work reports here, whoever displays it listens.

The workload runner reports requests done; the CLI draws a rich progress bar from it and a flow
run can mirror it into a Prefect progress artifact, without either side knowing the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int | None], None]  # (description, done, total)

_listeners: list[Listener] = []


def notify(description: str, done: int, total: int | None) -> None:
    for listener in list(_listeners):
        listener(description, done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
