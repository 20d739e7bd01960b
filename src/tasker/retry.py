"""The one retry rule. Computed once, stored as ``steps.next_retry_at``; nothing recomputes it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backoff:
    """Backoff settings of a step.

    base_seconds: delay before the first retry is ``base_seconds * 2`` (default 1.0 s).
    max_seconds: upper bound of any delay, server-requested ones included (default 60.0 s).
    jitter: relative spread; the delay is multiplied by a factor in ``[1-jitter, 1+jitter]``.
    """

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    jitter: float = 0.1


def retry_delay_seconds(
    backoff: Backoff,
    failed_attempts: int,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait after the n-th failed attempt (n = ``failed_attempts`` >= 1).

    ``delay = min(retry_after, max_seconds)`` when the handler asked for one, else
    ``min(base_seconds * 2**n, max_seconds)``; then multiplied by a uniform random
    factor in ``[1 - jitter, 1 + jitter]``.
    """
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts from 1")
    if retry_after is not None:
        delay = min(max(retry_after, 0.0), backoff.max_seconds)
    else:
        # Cap the exponent: 2**n overflows a float long before anyone retries that often.
        delay = min(backoff.base_seconds * 2 ** min(failed_attempts, 64), backoff.max_seconds)
    if backoff.jitter:
        factor = (rand or random).uniform(1 - backoff.jitter, 1 + backoff.jitter)
        delay *= factor
    return max(delay, 0.0)


def next_retry_at(
    failed_at: datetime,
    backoff: Backoff,
    failed_attempts: int,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> datetime:
    """``failed_at + retry_delay_seconds(...)``."""
    delay = retry_delay_seconds(backoff, failed_attempts, retry_after, rand)
    return failed_at + timedelta(seconds=delay)


def should_retry(attempts: int, max_attempts: int, retryable: bool) -> bool:
    """A failed step runs again while it is retryable and has attempts left."""
    return retryable and attempts < max_attempts
