"""A continuous-batching scheduler that makes capacity real: max_num_seqs x tokens_per_second.

One asyncio task steps the whole batch (like vLLM's engine loop); each step admits waiting
sequences into free slots and advances every running sequence by the tokens its clock allows.
Steps are at most ``MAX_STEP_RATE`` per second, so the cost per token stays small at any rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from vec_inf_flows.sim.metrics import EngineGauges, EngineMetrics

MIN_STEP_SECONDS = 0.01
PREFIX_BLOCK = 16
PREFIX_CACHE_LIMIT = 100_000


class EngineDeadError(RuntimeError):
    """The engine stopped (shutdown or simulated crash) while a request was in it."""


@dataclass(eq=False)
class Sequence:
    """One request inside the engine. Times are ``loop.time()`` seconds."""

    prompt_tokens: int
    output: tuple[str, ...]
    finish_reason: str
    max_tokens: int
    prefix_key: tuple[int, ...] = ()
    arrival: float = 0.0
    scheduled_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    emitted: int = 0
    cached_tokens: int = 0
    dead: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.finished_at is not None


class Engine:
    """Owns the waiting queue and the running batch; records vLLM's metrics as requests move."""

    def __init__(
        self,
        metrics: EngineMetrics,
        *,
        max_num_seqs: int,
        tokens_per_second: float,
        ttft: float,
        kv_cache_tokens: int,
        prefix_caching: bool = True,
        on_finished: Callable[[Sequence], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.max_num_seqs = max(1, max_num_seqs)
        self.tokens_per_second = tokens_per_second
        self.ttft = ttft
        self.kv_cache_tokens = max(1, kv_cache_tokens)
        self.prefix_caching = prefix_caching
        self.on_finished = on_finished
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.dead = False
        self.completed = 0
        self._prefix_blocks: set[int] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def gauges(self) -> EngineGauges:
        used = sum(s.prompt_tokens + s.emitted for s in self.running)
        return EngineGauges(
            running=len(self.running),
            waiting=len(self.waiting),
            kv_cache_usage=min(1.0, used / self.kv_cache_tokens),
        )

    @property
    def in_flight(self) -> int:
        return len(self.running) + len(self.waiting)

    async def stream(self, seq: Sequence) -> AsyncGenerator[tuple[str, ...], None]:
        """Submit a sequence and yield its tokens in the batches the engine produces them."""
        if self.dead:
            raise EngineDeadError("engine is dead")
        seq.arrival = asyncio.get_running_loop().time()
        self.waiting.append(seq)
        self._wakeup.set()
        delivered = 0
        try:
            while True:
                await seq.wake.wait()
                seq.wake.clear()
                if seq.dead:
                    raise EngineDeadError("engine is dead")
                if seq.emitted > delivered:
                    yield seq.output[delivered : seq.emitted]
                    delivered = seq.emitted
                if seq.done and delivered >= seq.emitted:
                    return
        finally:
            if not seq.done and not seq.dead:
                self._abort(seq)

    def fail_all(self) -> None:
        """Kill every queued and running sequence (shutdown or crash): their clients get errors."""
        self.dead = True
        for seq in [*self.waiting, *self.running]:
            seq.dead = True
            seq.wake.set()
        self.waiting.clear()
        self.running.clear()

    def _abort(self, seq: Sequence) -> None:
        """The client went away: free the slot and count an ``abort`` finish."""
        now = asyncio.get_running_loop().time()
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self._finish(seq, now, "abort")
        self._wakeup.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.running and not self.waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = loop.time()
            self._admit(now)
            step_tokens = self._advance(now)
            if step_tokens:
                self.metrics.histograms["iteration_tokens_total"].observe(step_tokens)
            self._admit(now)  # refill the slots that finished in this step
            delay = max(self._next_due(now) - loop.time(), MIN_STEP_SECONDS)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

    def _admit(self, now: float) -> None:
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting.popleft()
            seq.scheduled_at = now
            self.running.append(seq)

    def _advance(self, now: float) -> int:
        tokens = 0
        for seq in list(self.running):
            if seq.first_token_at is None:
                assert seq.scheduled_at is not None
                if now < seq.scheduled_at + self.ttft:
                    continue
                seq.first_token_at = now
                tokens += self._prefill(seq, now)
            due = min(
                len(seq.output),
                1 + math.floor((now - seq.first_token_at) * self.tokens_per_second + 1e-9),
            )
            if due > seq.emitted:
                self.metrics.add("generation_tokens", due - seq.emitted)
                tokens += due - seq.emitted
                seq.emitted = due
                seq.wake.set()
            if seq.emitted >= len(seq.output):
                self.running.remove(seq)
                self._finish(seq, now, seq.finish_reason)
                seq.wake.set()
        return tokens

    def _next_due(self, now: float) -> float:
        due = [
            (s.scheduled_at or now) + self.ttft
            if s.first_token_at is None
            else s.first_token_at + s.emitted / self.tokens_per_second
            for s in self.running
        ]
        return min(due, default=now + 1.0)

    def _prefill(self, seq: Sequence, now: float) -> int:
        """Count the prompt once it is 'computed', with a block-level prefix cache."""
        m = self.metrics
        seq.cached_tokens = self._prefix_hits(seq.prefix_key)
        computed = seq.prompt_tokens - seq.cached_tokens
        m.add("prompt_tokens", seq.prompt_tokens)
        m.prompt_by_source["local_compute"].value += computed
        m.prompt_by_source["local_cache_hit"].value += seq.cached_tokens
        if self.prefix_caching:
            m.add("prefix_cache_queries", seq.prompt_tokens)
            m.add("prefix_cache_hits", seq.cached_tokens)
            m.cached.value += seq.cached_tokens
            m.cached_by_source["device"].value += seq.cached_tokens
        m.histograms["time_to_first_token_seconds"].observe(now - seq.arrival)
        return computed

    def _prefix_hits(self, key: tuple[int, ...]) -> int:
        if not self.prefix_caching:
            return 0
        hits, prefix_hash, matching = 0, 0, True
        for index in range(len(key) // PREFIX_BLOCK):
            prefix_hash = hash(
                (prefix_hash, key[index * PREFIX_BLOCK : (index + 1) * PREFIX_BLOCK])
            )
            if matching and prefix_hash in self._prefix_blocks:
                hits += PREFIX_BLOCK
            else:
                matching = False
                if len(self._prefix_blocks) < PREFIX_CACHE_LIMIT:
                    self._prefix_blocks.add(prefix_hash)
        return hits

    def _finish(self, seq: Sequence, now: float, reason: str) -> None:
        seq.finished_at = now
        m, h = self.metrics, self.metrics.histograms
        m.success[reason].value += 1
        scheduled = seq.scheduled_at if seq.scheduled_at is not None else now
        first = seq.first_token_at if seq.first_token_at is not None else now
        decode = now - first
        h["e2e_request_latency_seconds"].observe(now - seq.arrival)
        h["request_queue_time_seconds"].observe(scheduled - seq.arrival)
        h["request_inference_time_seconds"].observe(now - scheduled)
        h["request_prefill_time_seconds"].observe(first - scheduled)
        h["request_decode_time_seconds"].observe(decode)
        h["request_prompt_tokens"].observe(seq.prompt_tokens)
        h["request_generation_tokens"].observe(seq.emitted)
        h["request_max_num_generation_tokens"].observe(seq.max_tokens)
        h["request_params_max_tokens"].observe(seq.max_tokens)
        h["request_params_n"].observe(1)
        h["request_num_preemptions"].observe(0)
        h["request_prefill_kv_computed_tokens"].observe(seq.prompt_tokens - seq.cached_tokens)
        if seq.emitted > 1:
            gap = decode / (seq.emitted - 1)
            h["inter_token_latency_seconds"].observe(gap, seq.emitted - 1)
            h["request_time_per_output_token_seconds"].observe(gap)
        if reason != "abort":
            self.completed += 1
        if self.on_finished is not None:
            self.on_finished(seq)
