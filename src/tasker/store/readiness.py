"""Step readiness, task execution context, DAG levels, health and analytics, typed.

The rules live in SQL: ``tasker.*`` functions on PostgreSQL (migration 0002) and the same
named queries in ``sql/sqlite/readiness.sql``. Readiness is derived from the edges and the
parents' states, independently of the incremental ``remaining_parents``/``claimable_at``
columns the claim query reads; a property test asserts the two agree.

A step is *ready* when all its parents are ``complete`` or ``resolved_manually`` and it is
``pending`` or retry-eligible (``error``, retryable, attempts left, ``next_retry_at`` reached).
A step that is not ready carries the first :data:`BLOCKING_REASONS` entry that applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tasker.clock import parse_utc
from tasker.store.database import Connection, Row

# In the order the rules test them (docs/sql-functions.md).
BLOCKING_REASONS = (
    "finished",
    "skipped",
    "cancelled",
    "waiting_for_child",
    "in_progress",
    "concurrency_limit",
    "rate_limited",
    "not_retryable",
    "retries_exhausted",
    "waiting_for_backoff",
    "scheduled",
    "waiting_for_signal",
    "dependencies_not_satisfied",
)
EXECUTION_STATUSES = (
    "cancelled",
    "has_ready_steps",
    "processing",
    "all_complete",
    "blocked_by_failures",
    "waiting_for_retry",
    "waiting_for_dependencies",
)
RECOMMENDED_ACTIONS = (
    "execute_ready_steps",
    "wait_for_completion",
    "finalize_task",
    "handle_failures",
    "wait_for_dependencies",
    "none",
)
HEALTH_STATUSES = ("healthy", "recovering", "blocked", "unknown")


@dataclass(frozen=True)
class StepReadiness:
    workflow_step_id: int
    task_id: int
    name: str
    current_state: str
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: int
    completed_parents: int
    attempts: int
    max_attempts: int
    next_retry_at: datetime | None
    last_attempted_at: datetime | None
    blocking_reason: str | None


@dataclass(frozen=True)
class TaskExecutionContext:
    task_id: int
    status: str
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: str
    recommended_action: str
    completion_percentage: float  # 0..100, 2 decimals
    health_status: str


@dataclass(frozen=True)
class SystemHealthCounts:
    total_tasks: int
    pending_tasks: int
    in_progress_tasks: int
    complete_tasks: int
    error_tasks: int
    cancelled_tasks: int
    resolved_manually_tasks: int
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    complete_steps: int
    error_steps: int
    retrying_steps: int
    exhausted_steps: int
    claimable_steps: int
    expired_leases: int
    active_workers: int


@dataclass(frozen=True)
class AnalyticsMetrics:
    analysis_period_start: datetime
    calculated_at: datetime
    active_tasks_count: int
    total_namespaces_count: int
    unique_task_types_count: int
    tasks_created: int
    tasks_completed: int
    tasks_failed: int
    steps_completed: int
    steps_failed: int
    completion_rate: float  # 0..1 over tasks finished (completed or failed) in the window
    error_rate: float
    avg_task_duration_seconds: float
    avg_step_duration_seconds: float
    task_throughput_per_minute: float
    step_throughput_per_minute: float


@dataclass(frozen=True)
class SlowStep:
    workflow_step_id: int
    task_id: int
    namespace: str
    task_name: str
    version: str
    step_name: str
    status: str
    attempts: int
    duration_seconds: float
    completed_at: datetime


@dataclass(frozen=True)
class SlowTask:
    task_id: int
    namespace: str
    name: str
    version: str
    status: str
    total_steps: int
    duration_seconds: float
    created_at: datetime
    completed_at: datetime


def step_readiness(
    conn: Connection, task_id: int, now: datetime, step_ids: Sequence[int] | None = None
) -> list[StepReadiness]:
    """One row per step of ``task_id`` (or only ``step_ids``), ordered by position."""
    rows = conn.fetch_all(
        "get_step_readiness_status",
        task_id=task_id,
        step_ids=None if step_ids is None else list(step_ids),
        now=now,
    )
    return [StepReadiness(**row) for row in rows]


def step_readiness_batch(
    conn: Connection, task_ids: Sequence[int], now: datetime
) -> list[StepReadiness]:
    """Readiness of every step of ``task_ids``, ordered by task then position."""
    rows = conn.fetch_all("get_step_readiness_status_batch", task_ids=list(task_ids), now=now)
    return [StepReadiness(**row) for row in rows]


def execution_context(conn: Connection, task_id: int, now: datetime) -> TaskExecutionContext | None:
    """The execution context of ``task_id``; None when there is no such task."""
    row = conn.fetch_one("get_task_execution_context", task_id=task_id, now=now)
    return None if row is None else _context(row)


def execution_contexts_batch(
    conn: Connection, task_ids: Sequence[int], now: datetime
) -> list[TaskExecutionContext]:
    """Execution contexts of the existing tasks among ``task_ids``, ordered by id."""
    rows = conn.fetch_all("get_task_execution_contexts_batch", task_ids=list(task_ids), now=now)
    return [_context(row) for row in rows]


def dependency_levels(conn: Connection, task_id: int) -> dict[int, int]:
    """``{step_id: level}``: roots are 0, any other step is 1 + its deepest parent."""
    rows = conn.fetch_all("calculate_dependency_levels", task_id=task_id)
    return {row["workflow_step_id"]: row["dependency_level"] for row in rows}


def system_health_counts(conn: Connection, now: datetime) -> SystemHealthCounts:
    row = conn.fetch_one("get_system_health_counts", now=now)
    assert row is not None  # an aggregate always returns one row
    return SystemHealthCounts(**{name: int(value) for name, value in row.items()})


def analytics_metrics(conn: Connection, since: datetime, now: datetime) -> AnalyticsMetrics:
    """Counts, rates and mean durations of tasks and steps over ``[since, now]``."""
    row = conn.fetch_one("get_analytics_metrics", since=since, now=now)
    assert row is not None  # an aggregate always returns one row
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name in ("analysis_period_start", "calculated_at"):
            values[name] = _as_time(value)
        elif isinstance(value, int):
            values[name] = value
        else:
            values[name] = float(value)
    return AnalyticsMetrics(**values)


def slowest_steps(conn: Connection, since: datetime, limit: int) -> list[SlowStep]:
    """The ``limit`` slowest steps finished since ``since``, slowest first."""
    rows = conn.fetch_all("get_slowest_steps", since=since, lim=limit)
    return [SlowStep(**{**row, "duration_seconds": float(row["duration_seconds"])}) for row in rows]


def slowest_tasks(conn: Connection, since: datetime, limit: int) -> list[SlowTask]:
    """The ``limit`` slowest tasks finished since ``since``, slowest first."""
    rows = conn.fetch_all("get_slowest_tasks", since=since, lim=limit)
    return [SlowTask(**{**row, "duration_seconds": float(row["duration_seconds"])}) for row in rows]


@dataclass(frozen=True)
class TimelineBucket:
    """The steps that finished in ``[start, start + bucket)``."""

    start: datetime
    completed: int
    failed: int
    error_rate: float  # failed / (completed + failed); 0 when nothing finished
    p50_seconds: float | None  # nearest-rank percentiles of completed steps' durations
    p95_seconds: float | None
    p99_seconds: float | None


def step_timeline(
    conn: Connection, since: datetime, now: datetime, bucket: timedelta
) -> list[TimelineBucket]:
    """Every bucket of ``bucket`` from ``since`` up to ``now``, the empty ones included.

    The last bucket may end after ``now``; what finished at ``now`` itself counts in it.
    """
    seconds = bucket.total_seconds()
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"a timeline bucket is a whole number of seconds, not {bucket}")
    if now < since:
        return []  # a window that starts in the future holds no bucket yet
    count = max(1, -(-(now - since) // bucket))
    rows = conn.fetch_all(
        "get_step_timeline",
        since=since,
        now=now,
        bucket_seconds=int(seconds),
        last_bucket=count - 1,
    )
    found = {int(row["bucket"]): row for row in rows}
    return [_bucket(since + i * bucket, found.get(i)) for i in range(count)]


def _bucket(start: datetime, row: Row | None) -> TimelineBucket:
    if row is None:
        return TimelineBucket(start, 0, 0, 0.0, None, None, None)
    completed, failed = int(row["completed"]), int(row["failed"])

    def seconds(name: str) -> float | None:
        value = row[name]
        return None if value is None else round(float(value), 6)

    return TimelineBucket(
        start=start,
        completed=completed,
        failed=failed,
        error_rate=round(failed / (completed + failed), 6),
        p50_seconds=seconds("p50_seconds"),
        p95_seconds=seconds("p95_seconds"),
        p99_seconds=seconds("p99_seconds"),
    )


def _context(row: Row) -> TaskExecutionContext:
    return TaskExecutionContext(
        **{**row, "completion_percentage": round(float(row["completion_percentage"]), 2)}
    )


def _as_time(value: datetime | str) -> datetime:
    # ``analysis_period_start`` does not end in ``_at``, so SQLite hands it back as text.
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return parse_utc(value)
