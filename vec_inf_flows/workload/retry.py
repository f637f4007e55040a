"""When to try a request again, and how long to wait first.

Backoff is exponential with full jitter so that many requests failing together (a replica
restarting, a burst of 503s) do not come back together. A server's ``Retry-After`` wins over
our own guess: it knows how long it will be busy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 429})  # plus every 5xx


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 0.25
    max_delay_s: float = 20.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is capped, not obeyed blindly

    def delay(self, failed_attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
        """The wait after ``failed_attempts`` failures (1 after the first)."""
        if retry_after_s is not None:
            # Honour the server, plus a little jitter so the waiters do not return in step.
            jitter = rng.uniform(0.0, min(self.base_delay_s, 0.1 * retry_after_s + 0.01))
            return min(retry_after_s, self.max_retry_after_s) + jitter
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (failed_attempts - 1))
        return rng.uniform(0.0, ceiling)
