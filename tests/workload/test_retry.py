"""Backoff and Retry-After arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from vec_inf_flows.workload.retry import RetryPolicy, is_retryable_status, parse_retry_after


def test_which_statuses_are_retried() -> None:
    assert all(is_retryable_status(s) for s in (408, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 413, 422))


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:07 GMT", now) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None and parse_retry_after("nan") is None


def test_backoff_grows_exponentially_within_jitter_and_caps() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay(failures, None, rng) for _ in range(200)]
        assert min(delays) >= 0.0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=0.2, max_retry_after_s=30.0)
    rng = random.Random(2)
    waits = [policy.delay(1, 2.0, rng) for _ in range(100)]
    assert all(2.0 <= wait <= 2.2 for wait in waits)
    assert 30.0 <= policy.delay(1, 3600.0, rng) <= 30.2
