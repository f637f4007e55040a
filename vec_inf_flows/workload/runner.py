"""Pushing a workload (or one chunk of it) through READY servers, exactly once.

Records are read one at a time and a request only starts when a slot of the window is free, so
memory is bounded by the window, not the file. Every finished request is written at once; if
every server is lost the run stops *without* writing the unfinished ids, so a rerun after
relaunching finishes them and nothing is recorded twice.

Servers may also join and leave while the run goes on (``membership``, fed by a replica group):
work starts on the first READY replica, the window grows with each one that joins, and the
requests in flight on one that leaves go to the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vec_inf_flows.errors import ServerError
from vec_inf_flows.scoring import RecordScorer
from vec_inf_flows.workload.clients import ClientShards
from vec_inf_flows.workload.concurrency import Window, concurrency_for
from vec_inf_flows.workload.membership import Membership, follow
from vec_inf_flows.workload.reader import Chunk, InputItem, read_items
from vec_inf_flows.workload.record import RecordError, ResultRecord, RetryNote
from vec_inf_flows.workload.replicas import (
    Outcome,
    ReplacementHook,
    Replica,
    ReplicaPool,
    ReplicaState,
)
from vec_inf_flows.workload.request import WorkRequest
from vec_inf_flows.workload.retry import RetryPolicy
from vec_inf_flows.workload.sender import Attempt, send_once
from vec_inf_flows.workload.stats import ChunkSummary, Progress, RunStats
from vec_inf_flows.workload.store import ResultStore

ProgressHook = Callable[[Progress], None]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    model: str | None = None  # None: the first model the first server lists
    defaults: Mapping[str, Any] = field(default_factory=dict)  # sampling params for every request
    concurrency: int | None = None  # None: from the live replicas' max_concurrency (+ headroom)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    api_key: str | None = None
    input_format: str | None = None  # None: from the file name
    failure_threshold: int = 10  # soft failures in a row that take a replica out
    fsync_every: int = 256
    seed: int | None = None  # for the backoff jitter
    deadline_s: float | None = None  # the whole chunk; None: no limit
    scorer: RecordScorer | None = None  # for records with a reference; None: auto


def run_chunk(
    input_path: str | Path,
    output_path: str | Path,
    replicas: Sequence[Replica | str],
    *,
    chunk: Chunk | None = None,
    options: RunOptions | None = None,
    on_progress: ProgressHook | None = None,
    on_replica_failed: ReplacementHook | None = None,
    membership: Membership | None = None,
) -> ChunkSummary:
    """Run one chunk (or, without ``chunk``, the whole input) to completion; blocking.

    After ``options.deadline_s`` seconds the requests in flight are cancelled and
    ``TimeoutError`` is raised: a deadline of our own, which works in any thread (a Prefect task
    timeout cannot interrupt a task in a worker thread). What finished is in the output, so a
    rerun sends only the rest.
    """
    work = run_chunk_async(
        input_path,
        output_path,
        replicas,
        chunk=chunk,
        options=options,
        on_progress=on_progress,
        on_replica_failed=on_replica_failed,
        membership=membership,
    )
    return asyncio.run(asyncio.wait_for(work, options.deadline_s if options else None))


async def run_chunk_async(
    input_path: str | Path,
    output_path: str | Path,
    replicas: Sequence[Replica | str],
    *,
    chunk: Chunk | None = None,
    options: RunOptions | None = None,
    on_progress: ProgressHook | None = None,
    on_replica_failed: ReplacementHook | None = None,
    membership: Membership | None = None,
) -> ChunkSummary:
    """As ``run_chunk``; with ``membership`` the run may start with no replica at all."""
    opts = options or RunOptions()
    servers = [r if isinstance(r, Replica) else Replica(r) for r in replicas]
    window = Window(opts.concurrency or concurrency_for(r.max_concurrency for r in servers))
    timeout = httpx.Timeout(opts.request_timeout_s, connect=opts.connect_timeout_s, pool=None)
    headers = {"Authorization": f"Bearer {opts.api_key}"} if opts.api_key else {}
    clients = ClientShards(window.limit, timeout, headers)

    def follow_capacity(live: Sequence[Replica]) -> None:
        if opts.concurrency is None:
            window.resize(concurrency_for(r.max_concurrency for r in live))
            clients.ensure(window.limit)

    pool = ReplicaPool(
        servers,
        opts.failure_threshold,
        on_replica_failed,
        expecting=membership is not None,
        on_capacity=follow_capacity,
    )
    following = (
        asyncio.get_running_loop().create_task(follow(membership, pool))
        if membership is not None
        else None
    )
    with ResultStore.open(output_path, fsync_every=opts.fsync_every) as store:
        try:
            defaults = dict(opts.defaults)
            if "model" not in defaults and opts.model:
                defaults["model"] = opts.model
            elif "model" not in defaults:
                first = servers[0] if servers else await pool.first_replica()
                defaults["model"] = await discover_model(clients.any, first)
            items = read_items(
                input_path, defaults=defaults, input_format=opts.input_format, chunk=chunk
            )
            run = _Run(clients, pool, store, opts, window, on_progress)
            run.stats.total = chunk.count if chunk else None
            await run.execute(items)
        finally:
            if following is not None:
                following.cancel()
                (outcome,) = await asyncio.gather(following, return_exceptions=True)
                if isinstance(outcome, Exception):
                    _log.warning("following the replica group failed: %s", outcome)
            await pool.close()
            await clients.aclose()
        return run.stats.summary(chunk.name if chunk else None)


async def discover_model(client: httpx.AsyncClient, replica: Replica) -> str:
    """The first model ``/v1/models`` lists: what a single-model vLLM server serves."""
    try:
        reply = await client.get(replica.base_url + "/models")
        reply.raise_for_status()
        return str(reply.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
        raise ServerError(
            f"Cannot list the models of {replica.base_url} ({error}); pass the model name."
        ) from None


class _Run:
    """The state of one run: the window of in-flight requests and what they produced."""

    def __init__(
        self,
        clients: ClientShards,
        pool: ReplicaPool,
        store: ResultStore,
        options: RunOptions,
        window: Window,
        on_progress: ProgressHook | None,
    ) -> None:
        self.clients = clients
        self.pool = pool
        self.store = store
        self.options = options
        self.on_progress = on_progress
        self.stats = RunStats()
        self.slots = window
        self.rng = random.Random(options.seed)
        self.scorer = options.scorer or RecordScorer.of(None)
        self.dispatched: set[str] = set()  # ids sent in this run (finished ones are in the store)
        self.tasks: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    async def execute(self, items: Iterable[InputItem]) -> None:
        try:
            for item in items:
                if self.failure is not None:
                    break
                if self._already_done(item):
                    continue
                if item.request is None:
                    self._record_invalid(item.line, item.derived_id, item.problem or "invalid")
                    continue
                await self.slots.acquire()
                if self.failure is not None:
                    self.slots.release()
                    break
                self.dispatched.add(item.id)
                task = asyncio.get_running_loop().create_task(self._process(item.request))
                self.tasks.add(task)
                task.add_done_callback(self._finished)
            while self.tasks and self.failure is None:
                await asyncio.wait(set(self.tasks), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            await self._cancel_in_flight()
        if self.failure is not None:
            raise self.failure

    async def _attempt(self, state: ReplicaState, request: WorkRequest) -> Attempt | None:
        """One attempt on one replica; None when the replica was retired mid-flight."""
        with self.clients.lease() as client:
            sending = asyncio.get_running_loop().create_task(
                send_once(client, state.replica.base_url, request)
            )
            self.pool.track(state, sending)
            try:
                return await sending
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the run itself is being cancelled
                return None

    def _already_done(self, item: InputItem) -> bool:
        """Skip ids written by an earlier run; turn a repeated id into this line's error."""
        earlier = self.store.line_of(item.id)
        if earlier == item.line:
            self.stats.skipped += 1
            self._report()
            return True
        if earlier is None and item.id not in self.dispatched:
            return False
        if item.derived_id in self.store:
            self.stats.skipped += 1
            self._report()
            return True
        first = f"line {earlier}" if earlier is not None else "an earlier line"
        self._record_invalid(
            item.line, item.derived_id, f"line {item.line}: id {item.id!r} already used by {first}"
        )
        return True

    def _record_invalid(self, line: int, record_id: str, problem: str) -> None:
        error = RecordError(type="invalid_input", message=problem)
        self._write(ResultRecord(id=record_id, line=line, ok=False, error=error))

    def _write(self, record: ResultRecord) -> None:
        self.store.append(record)
        self.stats.add(record)
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats.progress())

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.slots.release()
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.failure is None:
            self.failure = error

    async def _cancel_in_flight(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _process(self, request: WorkRequest) -> None:
        """Attempts until success, a final failure or no attempts left; then one record."""
        retries: list[RetryNote] = []
        first_start = time.perf_counter()
        attempt: Attempt | None = None
        replica_url = ""
        policy = self.options.retry
        number = 0
        while number < policy.max_attempts:
            # NoLiveReplicaError propagates: it ends the run and leaves this id for the rerun.
            state = await self.pool.acquire(request.max_tokens)
            replica_url = state.replica.base_url
            attempt = None
            try:
                attempt = await self._attempt(state, request)
            finally:
                detail = attempt.error.type if attempt and attempt.error else ""
                # A cancelled or moved attempt says nothing about the replica's health.
                health = attempt.health if attempt else Outcome.OK
                self.pool.release(state, health, detail, request.max_tokens)
            if attempt is None:  # its replica left while it was in flight: try another
                continue
            number += 1
            if attempt.ok or not attempt.retryable or number == policy.max_attempts:
                break
            wait = policy.delay(number, attempt.retry_after_s, self.rng)
            reason = _reason(attempt)
            retries.append(
                RetryNote(
                    attempt=number,
                    replica=replica_url,
                    reason=reason,
                    wait_s=round(wait, 4),
                    retry_after_s=attempt.retry_after_s,
                )
            )
            await asyncio.sleep(wait)
        assert attempt is not None
        scored = (
            self.scorer.score(
                request.kind.value, attempt.response if attempt.ok else None, request.reference
            )
            if request.reference is not None
            else None
        )
        self._write(
            ResultRecord(
                id=request.id,
                line=request.line,
                ok=attempt.ok,
                kind=request.kind.value,
                response=attempt.response,
                usage=_usage(attempt.response),
                latency_s=round(attempt.latency_s, 6),
                ttft_s=round(attempt.ttft_s, 6) if attempt.ttft_s is not None else None,
                elapsed_s=round(time.perf_counter() - first_start, 6),
                attempts=len(retries) + 1,
                retries=retries,
                replica=replica_url,
                error=attempt.error,
                score=scored.score if scored else None,
                score_error=scored.error if scored else None,
            )
        )


def _reason(attempt: Attempt) -> str:
    error = attempt.error
    if error is None:
        return "unknown"
    if error.status is not None:
        return f"HTTP {error.status}"
    return error.type


def _usage(response: dict[str, Any] | None) -> dict[str, Any] | None:
    usage = response.get("usage") if response else None
    return usage if isinstance(usage, dict) else None
