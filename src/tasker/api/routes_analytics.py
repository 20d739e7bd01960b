"""``/v1/analytics``: throughput, error rates and durations; the slowest steps and tasks;
the same over time.

Both read a window ``[since, now]``, 24 hours by default; a ``since`` without a timezone
is UTC, and one before 1970 is read as 1970 (no task is older).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from tasker.api.deps import COMMON_ERRORS, DIGITS_ONLY, TaskerDep
from tasker.api.errors import ApiError
from tasker.api.schemas import BottlenecksOut, PerformanceOut, TimelineOut
from tasker.api.security import Reader

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=COMMON_ERRORS)

DEFAULT_WINDOW = timedelta(hours=24)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _not_a_number(value: Any) -> Any:
    # Pydantic would read "1700000000" as a Unix time; the document promises ISO 8601 only.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-01-01T00:00:00Z")
    return value


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
Since = Annotated[
    datetime | None,
    BeforeValidator(_not_a_number),
    Query(description="Start of the window (ISO 8601); default: 24 hours ago."),
]


def window_start(since: datetime | None, now: datetime) -> datetime:
    if since is None:
        return now - DEFAULT_WINDOW
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        since = since.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset falls off the calendar
        return EPOCH if since.year < 1970 else now
    return max(since, EPOCH)


@router.get(
    "/performance",
    response_model=PerformanceOut,
    summary="Counts, rates, mean durations and throughput over a window",
    operation_id="getPerformance",
)
def performance(tasker: TaskerDep, who: Reader, since: Since = None) -> Any:
    now = tasker.now()
    start = window_start(since, now)
    return asdict(tasker.analytics(start))


@router.get(
    "/bottlenecks",
    response_model=BottlenecksOut,
    summary="The slowest steps and tasks finished in a window",
    operation_id="getBottlenecks",
)
def bottlenecks(
    tasker: TaskerDep,
    who: Reader,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=100), DIGITS_ONLY] = 10,
) -> Any:
    start = window_start(since, tasker.now())
    steps, tasks = tasker.slowest(start, limit)
    return {
        "since": start,
        "slowest_steps": [asdict(s) for s in steps],
        "slowest_tasks": [asdict(t) for t in tasks],
    }


MAX_BUCKETS = 1000


@router.get(
    "/timeline",
    response_model=TimelineOut,
    summary="Steps completed and failed, and duration percentiles, per bucket of time",
)
def timeline(
    tasker: TaskerDep,
    who: Reader,
    since: Since = None,
    bucket_seconds: Annotated[
        int,
        Query(ge=1, le=7 * 24 * 3600, description="The width of a bucket; default one hour."),
        DIGITS_ONLY,
    ] = 3600,
) -> Any:
    now = tasker.now()
    start = window_start(since, now)
    bucket = timedelta(seconds=bucket_seconds)
    if (now - start) // bucket >= MAX_BUCKETS:
        raise ApiError(
            422,
            "too_many_buckets",
            f"the window from {start.isoformat()} holds more than {MAX_BUCKETS} buckets of "
            f"{bucket_seconds} s: widen the buckets or shorten the window",
        )
    return {
        "since": start,
        "bucket_seconds": bucket_seconds,
        "buckets": [asdict(b) for b in tasker.step_timeline(start, bucket, now)],
    }
