"""The one retry rule as a table. After the n-th failed attempt:
``delay = min(retry_after, max_seconds)`` when the handler asked for one, else
``min(base_seconds * 2**n, max_seconds)``; then multiplied by a factor in
``[1 - jitter, 1 + jitter]``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tasker.retry import Backoff, next_retry_at, retry_delay_seconds, should_retry


class Extreme(random.Random):
    """A random source that always draws the low (or the high) end of the jitter."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


# (n, base_seconds, max_seconds, jitter, retry_after) -> (shortest, longest) delay in seconds
TABLE = [
    pytest.param(1, 1.0, 60.0, 0.0, None, (2.0, 2.0), id="first-retry-is-twice-base"),
    pytest.param(2, 1.0, 60.0, 0.0, None, (4.0, 4.0), id="doubles"),
    pytest.param(3, 1.0, 60.0, 0.0, None, (8.0, 8.0), id="doubles-again"),
    pytest.param(5, 1.0, 60.0, 0.0, None, (32.0, 32.0), id="still-under-the-cap"),
    pytest.param(6, 1.0, 60.0, 0.0, None, (60.0, 60.0), id="64-capped-at-max"),
    pytest.param(1000, 1.0, 60.0, 0.0, None, (60.0, 60.0), id="huge-n-no-overflow"),
    pytest.param(1, 0.25, 60.0, 0.0, None, (0.5, 0.5), id="fractional-base"),
    pytest.param(3, 10.0, 30.0, 0.0, None, (30.0, 30.0), id="small-max"),
    pytest.param(1, 0.0, 60.0, 0.0, None, (0.0, 0.0), id="zero-base-retries-at-once"),
    pytest.param(1, 1.0, 60.0, 0.1, None, (1.8, 2.2), id="jitter-spreads-both-ways"),
    pytest.param(3, 1.0, 60.0, 0.5, None, (4.0, 12.0), id="wide-jitter"),
    pytest.param(6, 1.0, 60.0, 0.5, None, (30.0, 90.0), id="jitter-applies-after-the-cap"),
    pytest.param(1, 1.0, 60.0, 0.0, 30.0, (30.0, 30.0), id="retry-after-wins"),
    pytest.param(4, 1.0, 60.0, 0.0, 5.0, (5.0, 5.0), id="retry-after-ignores-n"),
    pytest.param(1, 1.0, 60.0, 0.0, 300.0, (60.0, 60.0), id="retry-after-capped-at-max"),
    pytest.param(1, 1.0, 60.0, 0.0, 0.0, (0.0, 0.0), id="retry-after-zero"),
    pytest.param(1, 1.0, 60.0, 0.0, -5.0, (0.0, 0.0), id="negative-retry-after-is-zero"),
    pytest.param(1, 1.0, 60.0, 0.2, 10.0, (8.0, 12.0), id="retry-after-jittered-too"),
]


@pytest.mark.parametrize(("n", "base", "maximum", "jitter", "retry_after", "bounds"), TABLE)
def test_retry_delay(
    n: int,
    base: float,
    maximum: float,
    jitter: float,
    retry_after: float | None,
    bounds: tuple[float, float],
) -> None:
    # Given a step's backoff settings and its n-th failed attempt
    backoff = Backoff(base_seconds=base, max_seconds=maximum, jitter=jitter)
    # When the delay is drawn at either end of the jitter, and at random
    low, high = (
        retry_delay_seconds(backoff, n, retry_after, rand=Extreme(high)) for high in (False, True)
    )
    drawn = [retry_delay_seconds(backoff, n, retry_after, rand=random.Random(s)) for s in range(50)]
    # Then the ends are the table's bounds, and every draw falls between them
    assert (low, high) == pytest.approx(bounds)
    assert all(bounds[0] - 1e-9 <= d <= bounds[1] + 1e-9 for d in drawn)


def test_the_first_failure_counts_as_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay_seconds(Backoff(), 0)


def test_next_retry_at_is_the_failure_time_plus_the_delay() -> None:
    failed_at = datetime(2026, 1, 1, tzinfo=UTC)
    backoff = Backoff(base_seconds=1.5, max_seconds=60.0, jitter=0.0)
    assert next_retry_at(failed_at, backoff, 2) == failed_at + timedelta(seconds=6)
    assert next_retry_at(failed_at, backoff, 2, retry_after=1) == failed_at + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "retryable", "expected"),
    [
        (1, 3, True, True),
        (2, 3, True, True),
        (3, 3, True, False),  # max_attempts counts the first attempt too
        (4, 3, True, False),
        (1, 1, True, False),
        (1, 3, False, False),  # PermanentError makes the step not retryable
    ],
)
def test_should_retry(attempts: int, max_attempts: int, retryable: bool, expected: bool) -> None:
    assert should_retry(attempts, max_attempts, retryable) is expected
