"""How many requests to keep in flight, from what the server was launched with.

A vLLM server runs at most ``--max-num-seqs`` sequences at once; more in flight only queue
inside it, fewer leave batch slots idle. A small headroom above it covers the gap between one
request finishing and the next arriving, so the batch stays full.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.handle import MAX_NUM_SEQS_NAMES, max_num_seqs, positive_int

__all__ = ["DEFAULT_CONCURRENCY", "concurrency_for", "max_num_seqs", "max_num_seqs_from_job_json"]

DEFAULT_CONCURRENCY = 16  # when nothing says what the server can take
_NAMES = frozenset(MAX_NUM_SEQS_NAMES)


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
                return positive_int(value)
        children: Iterable[object] = node.values()
    elif isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and node[0] in _NAMES:
            return positive_int(node[1])
        children = node
    else:
        return None
    for child in children:
        found = _search(child)
        if found is not None:
            return found
    return None
