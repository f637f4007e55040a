"""Downstream workloads: a file of requests in, one result record per id out, exactly once.

The Prefect layer calls ``iter_chunks`` once and ``run_chunk`` per chunk; nothing here imports
Prefect.
"""

from vec_inf_flows.workload.concurrency import (
    concurrency_for,
    max_num_seqs,
    max_num_seqs_from_job_json,
)
from vec_inf_flows.workload.reader import Chunk, InputItem, iter_chunks, read_items
from vec_inf_flows.workload.record import RecordError, ResultRecord, RetryNote
from vec_inf_flows.workload.replicas import Replica, ReplicaPool
from vec_inf_flows.workload.retry import RetryPolicy
from vec_inf_flows.workload.runner import RunOptions, run_chunk, run_chunk_async
from vec_inf_flows.workload.stats import ChunkSummary, Progress
from vec_inf_flows.workload.store import ResultStore

__all__ = [
    "Chunk",
    "ChunkSummary",
    "InputItem",
    "Progress",
    "RecordError",
    "Replica",
    "ReplicaPool",
    "ResultRecord",
    "ResultStore",
    "RetryNote",
    "RetryPolicy",
    "RunOptions",
    "concurrency_for",
    "iter_chunks",
    "max_num_seqs",
    "max_num_seqs_from_job_json",
    "read_items",
    "run_chunk",
    "run_chunk_async",
]
