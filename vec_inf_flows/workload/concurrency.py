"""How many requests to keep in flight, from what the server was launched with.

A vLLM server runs at most ``--max-num-seqs`` sequences at once; more in flight only queue
inside it, fewer leave batch slots idle. A small headroom above it covers the gap between one
request finishing and the next arriving, so the batch stays full.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from vec_inf_flows.errors import ConfigError

DEFAULT_CONCURRENCY = 16  # when nothing says what the server can take
_NAMES = frozenset({"--max-num-seqs", "max-num-seqs", "max_num_seqs"})


def max_num_seqs(engine_args: Mapping[str, object] | Iterable[tuple[str, object]]) -> int | None:
    """``--max-num-seqs`` from a mapping, or from ``(flag, value)`` pairs as in ``LaunchSpec``."""
    pairs = engine_args.items() if isinstance(engine_args, Mapping) else engine_args
    for name, value in pairs:
        if name in _NAMES:
            return _positive(value)
    return None


def max_num_seqs_from_job_json(path: str | Path) -> int | None:
    """Look through a job's JSON (however nested) for ``--max-num-seqs``."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"Cannot read job file {path}: {error.strerror}.") from None
    except ValueError:
        raise ConfigError(f"Job file {path} is not JSON.") from None
    return _search(data)


def concurrency_for(max_seqs: Iterable[int | None], headroom: float = 1.25) -> int:
    """Total in-flight requests for a set of replicas (unknown ones count as the default)."""
    total = 0
    for seqs in max_seqs:
        total += max(1, round(seqs * headroom)) if seqs else DEFAULT_CONCURRENCY
    return max(1, total)


def _search(node: object) -> int | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NAMES:
                return _positive(value)
        children: Iterable[object] = node.values()
    elif isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and node[0] in _NAMES:
            return _positive(node[1])
        children = node
    else:
        return None
    for child in children:
        found = _search(child)
        if found is not None:
            return found
    return None


def _positive(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None
