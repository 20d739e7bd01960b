"""Step readiness, execution context, dependency levels, health and analytics in SQL.

Every test runs on SQLite and PostgreSQL. The property tests compare the SQL with a
pure-Python reference model (readiness_model.py), the two backends with each other, and
readiness with the engine's incremental ``claimable_at`` column.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from readiness_model import (
    NOW,
    Inserted,
    RawDb,
    StepSpec,
    TaskSpec,
    chain,
    diamond,
    expected_context,
    expected_levels,
    expected_readiness,
    task_specs,
)

from tasker.store import open_database
from tasker.store.database import Database
from tasker.store.readiness import (
    BLOCKING_REASONS,
    EXECUTION_STATUSES,
    HEALTH_STATUSES,
    RECOMMENDED_ACTIONS,
    AnalyticsMetrics,
    SlowStep,
    SlowTask,
    StepReadiness,
    SystemHealthCounts,
    TaskExecutionContext,
    TimelineBucket,
    analytics_metrics,
    dependency_levels,
    execution_context,
    execution_contexts_batch,
    slowest_steps,
    slowest_tasks,
    step_readiness,
    step_readiness_batch,
    step_timeline,
    system_health_counts,
)

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SECOND = timedelta(seconds=1)


def insert(db_url: str, task: TaskSpec) -> Inserted:
    with RawDb(db_url) as raw:
        return raw.insert_task(task)


def readiness_of(database: Database, ids: Inserted) -> list[StepReadiness]:
    with database.read() as conn:
        return step_readiness(conn, ids.task_id, NOW)


def context_of(database: Database, ids: Inserted) -> TaskExecutionContext:
    with database.read() as conn:
        ctx = execution_context(conn, ids.task_id, NOW)
    assert ctx is not None
    return ctx


# --- properties -------------------------------------------------------------------------------


@PROPERTY
@given(task=task_specs(), subset=st.data())
def test_readiness_context_and_levels_match_the_reference_model(
    database: Database, db_url: str, task: TaskSpec, subset: st.DataObject
) -> None:
    # Given a random DAG in a reachable state, stored as a new task
    ids = insert(db_url, task)
    positions = subset.draw(st.sets(st.integers(0, len(task.steps) - 1), min_size=1))
    some_ids = sorted(ids.step_ids[p] for p in positions)

    # When the readiness functions run
    with database.read() as conn:
        rows = step_readiness(conn, ids.task_id, NOW)
        some_rows = step_readiness(conn, ids.task_id, NOW, step_ids=some_ids)
        batch_rows = step_readiness_batch(conn, [ids.task_id], NOW)
        ctx = execution_context(conn, ids.task_id, NOW)
        batch_ctx = execution_contexts_batch(conn, [ids.task_id], NOW)
        levels = dependency_levels(conn, ids.task_id)

    # Then each agrees with the model of the rules
    assert rows == expected_readiness(task, ids, NOW)
    assert some_rows == expected_readiness(task, ids, NOW, sorted(positions))
    assert batch_rows == rows
    assert ctx == expected_context(task, ids, NOW)
    assert batch_ctx == [ctx]
    assert levels == dict(zip(ids.step_ids, expected_levels(task), strict=True))


@PROPERTY
@given(task=task_specs())
def test_readiness_equals_the_incremental_claimable_at(
    database: Database, db_url: str, task: TaskSpec
) -> None:
    # Given a random reachable state with remaining_parents/claimable_at kept as the engine does
    ids = insert(db_url, task)
    with RawDb(db_url) as raw:
        claimable = raw.claimable_at_by_id(ids.task_id)

    # When readiness is derived from the edges
    rows = readiness_of(database, ids)

    # Then a step is ready exactly when the claim query would take it now
    for row in rows:
        when = claimable[row.workflow_step_id]
        assert row.ready_for_execution == (when is not None and when <= NOW), row


@pytest.mark.postgres
@PROPERTY
@given(task=task_specs())
def test_sqlite_and_postgres_return_identical_rows(
    sqlite_url: str, postgres_url: str, task: TaskSpec
) -> None:
    # Given the same task stored in a SQLite and a PostgreSQL database
    ids = {url: insert(url, task) for url in (sqlite_url, postgres_url)}
    assert ids[sqlite_url] == ids[postgres_url]
    task_id = ids[sqlite_url].task_id

    # When each backend computes readiness, context and levels
    results = []
    for url in (sqlite_url, postgres_url):
        db = open_database(url)
        try:
            with db.read() as conn:
                results.append(
                    (
                        step_readiness(conn, task_id, NOW),
                        execution_contexts_batch(conn, [task_id], NOW),
                        dependency_levels(conn, task_id),
                        system_health_counts(conn, NOW),
                    )
                )
        finally:
            db.close()

    # Then they return the same rows, value for value
    assert results[0] == results[1]


# --- the diamond A -> B, A -> C, B and C -> D ----------------------------------------------------


def test_diamond_halfway_rows_are_exact(database: Database, db_url: str) -> None:
    # Given A complete, B complete, C failed once and waiting 10 s for its retry, D pending
    retry_at = NOW + 10 * SECOND
    task = diamond("complete", "complete", "error", "pending", c={"next_retry_at": retry_at})
    ids = insert(db_url, task)
    a, b, c, d = ids.step_ids
    attempted = NOW - 30 * SECOND

    # When readiness is asked for
    rows = readiness_of(database, ids)

    # Then every column is as the rules say
    def row(step_id: int, name: str, state: str, **changes: Any) -> StepReadiness:
        base = StepReadiness(
            workflow_step_id=step_id, task_id=ids.task_id, name=name, current_state=state,
            dependencies_satisfied=True, retry_eligible=False, ready_for_execution=False,
            total_parents=1, completed_parents=1, attempts=1, max_attempts=3,
            next_retry_at=None, last_attempted_at=attempted, blocking_reason="finished",
        )  # fmt: skip
        return replace(base, **changes)

    assert rows == [
        row(a, "a", "complete", total_parents=0, completed_parents=0),
        row(b, "b", "complete"),
        row(c, "c", "error", next_retry_at=retry_at, blocking_reason="waiting_for_backoff"),
        row(d, "d", "pending", dependencies_satisfied=False, total_parents=2,
            completed_parents=1, attempts=0, last_attempted_at=None,
            blocking_reason="dependencies_not_satisfied"),
    ]  # fmt: skip

    # And once the backoff has elapsed, C is ready and nothing else changes
    with database.read() as conn:
        later = step_readiness(conn, ids.task_id, retry_at)
    assert later == [
        rows[0],
        rows[1],
        replace(rows[2], retry_eligible=True, ready_for_execution=True, blocking_reason=None),
        rows[3],
    ]


@pytest.mark.parametrize(
    ("states", "ready", "reasons"),
    [
        (("pending",) * 4, "a", {"b": "dependencies_not_satisfied",
                                 "c": "dependencies_not_satisfied",
                                 "d": "dependencies_not_satisfied"}),
        (("in_progress", "pending", "pending", "pending"), "", {"a": "in_progress"}),
        (("complete", "pending", "pending", "pending"), "bc", {"a": "finished"}),
        (("complete", "complete", "in_progress", "pending"), "", {"c": "in_progress"}),
        (("complete", "complete", "resolved_manually", "pending"), "d", {"c": "finished"}),
        (("complete", "complete", "cancelled", "pending"), "", {"c": "cancelled"}),
        (("complete",) * 4, "", {"d": "finished"}),
    ],
)  # fmt: skip
def test_diamond_states_release_exactly_the_steps_whose_parents_are_done(
    database: Database, db_url: str, states: tuple[str, ...], ready: str,
    reasons: dict[str, str],
) -> None:  # fmt: skip
    # Given a diamond with its steps in the given states
    ids = insert(db_url, diamond(*states))

    # When readiness is asked for
    rows = readiness_of(database, ids)

    # Then only the expected steps are ready, and the others say why not
    assert [r.name for r in rows if r.ready_for_execution] == list(ready)
    for r in rows:
        assert (r.blocking_reason is None) == r.ready_for_execution
        if r.name in reasons:
            assert r.blocking_reason == reasons[r.name]


# --- every blocking reason and execution status is reachable ----------------------------------

# Step C of a diamond whose A and B are complete, in the state that gives each reason.
REASON_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "finished": ("complete", {}),
    "cancelled": ("cancelled", {}),
    "in_progress": ("in_progress", {}),
    "not_retryable": ("error", {"retryable": False, "next_retry_at": NOW - SECOND}),
    "retries_exhausted": ("error", {"attempts": 3, "next_retry_at": NOW - SECOND}),
    "waiting_for_backoff": ("error", {"next_retry_at": NOW + SECOND}),
    "skipped": ("skipped", {}),
    "waiting_for_signal": ("pending", {"attempts": 0, "wait_for": "go"}),
    "scheduled": ("pending", {"attempts": 0}),  # with the task's run_at in the future
    "waiting_for_child": ("in_progress", {"child_task_id": 99}),
    "concurrency_limit": ("pending", {"attempts": 0, "flow_wait": "concurrency_limit",
                                      "flow_until": datetime(9999, 12, 31, tzinfo=UTC)}),
    "rate_limited": ("error", {"attempts": 1, "next_retry_at": NOW - SECOND,
                               "flow_wait": "rate_limited", "flow_until": NOW + SECOND}),
}  # fmt: skip


def test_reason_cases_cover_every_blocking_reason() -> None:
    assert set(REASON_CASES) | {"dependencies_not_satisfied"} == set(BLOCKING_REASONS)


@pytest.mark.parametrize("reason", sorted(REASON_CASES))
def test_each_blocking_reason_is_reported(database: Database, db_url: str, reason: str) -> None:
    # Given step C in the state for `reason` (D then waits on C)
    state, changes = REASON_CASES[reason]
    task = diamond("complete", "complete", state, "pending", c=changes)
    if reason == "scheduled":  # A and B resolved by hand before the task's start
        task = replace(task, run_at=NOW + SECOND)
    ids = insert(db_url, task)

    # When readiness is asked for
    rows = {r.name: r for r in readiness_of(database, ids)}

    # Then C reports that reason and is not ready
    assert rows["c"].blocking_reason == reason
    assert not rows["c"].ready_for_execution
    if state not in ("complete", "resolved_manually"):
        assert rows["d"].blocking_reason == "dependencies_not_satisfied"


def test_an_error_step_at_its_retry_time_is_ready(database: Database, db_url: str) -> None:
    # Given C failed with attempts left and its retry time is exactly now
    changes = {"attempts": 2, "next_retry_at": NOW}
    ids = insert(db_url, diamond("complete", "complete", "error", "pending", c=changes))

    # When readiness is asked for
    rows = {r.name: r for r in readiness_of(database, ids)}

    # Then C is eligible and ready
    assert rows["c"].retry_eligible and rows["c"].ready_for_execution
    assert rows["c"].blocking_reason is None


CONTEXT_CASES: dict[str, tuple[TaskSpec, str, str]] = {
    # name: (task, recommended_action, health_status); the key is the execution status
    "has_ready_steps": (diamond("complete", "pending", "pending", "pending"),
                        "execute_ready_steps", "healthy"),
    "processing": (diamond("complete", "in_progress", "error", "pending",
                           c={"next_retry_at": NOW + SECOND}),
                   "wait_for_completion", "recovering"),
    "all_complete": (diamond("complete", "complete", "resolved_manually", "complete"),
                     "finalize_task", "healthy"),
    "blocked_by_failures": (diamond("complete", "complete", "error", "pending",
                                    c={"retryable": False}),
                            "handle_failures", "blocked"),
    "waiting_for_retry": (diamond("complete", "complete", "error", "pending",
                                  c={"next_retry_at": NOW + SECOND}),
                          "wait_for_completion", "recovering"),
    # The fallback. In an acyclic graph the topmost unfinished step always has its parents
    # done, so some earlier rule matches; only a cycle (which template validation rejects)
    # leaves every unfinished step waiting on another.
    "waiting_for_dependencies": (
        TaskSpec(steps=(StepSpec("x", parents=(1,)), StepSpec("y", parents=(0,)))),
        "wait_for_dependencies", "healthy"),
    "cancelled": (diamond("complete", "complete", "cancelled", "pending"), "none", "unknown"),
}  # fmt: skip


def test_context_cases_cover_every_execution_status() -> None:
    assert set(CONTEXT_CASES) == set(EXECUTION_STATUSES)
    assert {action for _, action, _ in CONTEXT_CASES.values()} == set(RECOMMENDED_ACTIONS)
    assert {health for _, _, health in CONTEXT_CASES.values()} == set(HEALTH_STATUSES)


@pytest.mark.parametrize("status", sorted(CONTEXT_CASES))
def test_each_execution_status_is_reported(database: Database, db_url: str, status: str) -> None:
    # Given a task in the state for `status`
    task, action, health = CONTEXT_CASES[status]
    ids = insert(db_url, task)

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then status, action and health are as the rules say
    assert (ctx.execution_status, ctx.recommended_action, ctx.health_status) == (
        status,
        action,
        health,
    )


def test_a_cancelled_step_ends_the_wait_instead_of_blocking_forever(
    database: Database, db_url: str
) -> None:
    # Given a diamond whose C was cancelled, so D can never run
    ids = insert(db_url, diamond("complete", "complete", "cancelled", "pending"))

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then it is reported as cancelled, not as waiting for D's dependencies
    assert ctx.execution_status == "cancelled"
    assert ctx.recommended_action == "none"
    assert (ctx.completed_steps, ctx.pending_steps, ctx.completion_percentage) == (2, 1, 50.0)


def test_a_non_retryable_failure_blocks_the_task_rather_than_waiting(
    database: Database, db_url: str
) -> None:
    # Given C failed permanently (PermanentError) while it still had attempts left
    changes = {"retryable": False, "attempts": 1, "next_retry_at": None}
    ids = insert(db_url, diamond("complete", "complete", "error", "pending", c=changes))

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then the task is blocked by failures and must be handled, not left waiting
    assert ctx == TaskExecutionContext(
        task_id=ids.task_id, status="in_progress", total_steps=4, pending_steps=1,
        in_progress_steps=0, completed_steps=2, failed_steps=1, ready_steps=0,
        execution_status="blocked_by_failures", recommended_action="handle_failures",
        completion_percentage=50.0, health_status="blocked",
    )  # fmt: skip


def test_a_task_already_complete_needs_no_finalizing(database: Database, db_url: str) -> None:
    # Given a finished diamond whose task is already marked complete
    task = replace(diamond(*["complete"] * 4), status="complete", completed_at=NOW)
    ids = insert(db_url, task)

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then everything is done and there is nothing left to do
    assert (ctx.execution_status, ctx.recommended_action) == ("all_complete", "none")
    assert ctx.completion_percentage == 100.0


def test_a_cancelled_task_is_cancelled_whatever_its_steps(database: Database, db_url: str) -> None:
    # Given a cancelled task whose first step would otherwise be ready
    ids = insert(db_url, replace(diamond(*["pending"] * 4), status="cancelled"))

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then the task's own state wins
    assert (ctx.execution_status, ctx.recommended_action, ctx.health_status) == (
        "cancelled",
        "none",
        "unknown",
    )
    assert ctx.ready_steps == 1


def test_completion_percentage_has_two_decimals(database: Database, db_url: str) -> None:
    # Given one step done out of three
    steps = (StepSpec("x", status="complete", attempts=1, completed_at=NOW), StepSpec("y"),
             StepSpec("z", parents=(1,)))  # fmt: skip
    ids = insert(db_url, TaskSpec(steps=steps))

    # When its execution context is asked for
    ctx = context_of(database, ids)

    # Then the percentage is rounded to two decimals
    assert ctx.completion_percentage == 33.33


def test_batches_cover_several_tasks_and_skip_unknown_ones(database: Database, db_url: str) -> None:
    # Given two tasks
    first = insert(db_url, diamond(*["pending"] * 4))
    second = insert(db_url, chain(3))

    # When the batch functions are asked about both and an unknown id
    with database.read() as conn:
        rows = step_readiness_batch(conn, [second.task_id, first.task_id, 999_999], NOW)
        contexts = execution_contexts_batch(conn, [second.task_id, 999_999, first.task_id], NOW)
        missing = execution_context(conn, 999_999, NOW)

    # Then rows come ordered by task then position, and unknown tasks are left out
    assert [(r.task_id, r.name) for r in rows] == [(first.task_id, n) for n in "abcd"] + [
        (second.task_id, n) for n in ("s0", "s1", "s2")
    ]
    assert [c.task_id for c in contexts] == [first.task_id, second.task_id]
    assert missing is None


# --- dependency levels --------------------------------------------------------------------------


def test_dependency_levels_of_a_diamond(database: Database, db_url: str) -> None:
    # Given a diamond with an extra shortcut A -> D
    base = diamond(*["pending"] * 4)
    d = replace(base.steps[3], parents=(0, 1, 2))
    ids = insert(db_url, replace(base, steps=(*base.steps[:3], d)))

    # When levels are calculated
    with database.read() as conn:
        levels = dependency_levels(conn, ids.task_id)

    # Then each step sits at its longest distance from the root
    a, b, c, d_id = ids.step_ids
    assert levels == {a: 0, b: 1, c: 1, d_id: 2}


def test_dependency_levels_of_a_2000_step_chain(database: Database, db_url: str) -> None:
    # Given a chain of 2,000 steps
    ids = insert(db_url, chain(2000))

    # When levels are calculated
    started = time.perf_counter()
    with database.read() as conn:
        levels = dependency_levels(conn, ids.task_id)
    elapsed = time.perf_counter() - started

    # Then the n-th step is at level n, computed without a query per level
    assert levels == {step_id: n for n, step_id in enumerate(ids.step_ids)}
    assert elapsed < 5.0


def test_dependency_levels_of_stacked_diamonds_do_not_enumerate_paths(
    database: Database, db_url: str
) -> None:
    # Given 40 diamonds stacked (2**40 root-to-leaf paths)
    steps = [StepSpec("top")]
    for layer in range(40):
        top = len(steps) - 1
        steps += [StepSpec(f"l{layer}", parents=(top,)), StepSpec(f"r{layer}", parents=(top,))]
        steps.append(StepSpec(f"j{layer}", parents=(top + 1, top + 2)))
    ids = insert(db_url, TaskSpec(steps=tuple(steps)))

    # When levels are calculated
    started = time.perf_counter()
    with database.read() as conn:
        levels = dependency_levels(conn, ids.task_id)
    elapsed = time.perf_counter() - started

    # Then the bottom join is two levels per diamond down, and the answer came quickly
    assert levels[ids.step_ids[-1]] == 80
    assert levels == dict(zip(ids.step_ids, expected_levels(TaskSpec(tuple(steps))), strict=True))
    assert elapsed < 5.0


# --- health counts and analytics ---------------------------------------------------------------


def _known_dataset(db_url: str) -> tuple[Inserted, Inserted, Inserted]:
    """Three tasks and three workers with hand-checkable numbers.

    - done: complete task created 1 h before NOW, completed at NOW - 10 min (3,000 s);
      its steps took 20 s and 40 s (last attempt to completion).
    - failed: error task updated 5 min ago; one step complete (10 s), one permanently failed.
    - running: in progress; a step with an expired lease, a step retrying, a pending step.
    """
    hour_ago = NOW - timedelta(hours=1)
    done = TaskSpec(
        status="complete", name="report", created_at=hour_ago,
        completed_at=NOW - timedelta(minutes=10),
        steps=(
            StepSpec("x", status="complete", attempts=2, last_attempted_at=NOW - 3600 * SECOND
                     + 100 * SECOND, completed_at=NOW - 3600 * SECOND + 120 * SECOND),
            StepSpec("y", parents=(0,), status="complete", attempts=1,
                     last_attempted_at=NOW - 20 * 60 * SECOND,
                     completed_at=NOW - 20 * 60 * SECOND + 40 * SECOND),
        ),
    )  # fmt: skip
    failed = TaskSpec(
        status="error", name="billing", created_at=hour_ago,
        updated_at=NOW - timedelta(minutes=5),
        steps=(
            StepSpec("x", status="complete", attempts=1, last_attempted_at=NOW - 600 * SECOND,
                     completed_at=NOW - 590 * SECOND),
            StepSpec("y", parents=(0,), status="error", attempts=1, retryable=False,
                     last_attempted_at=NOW - 400 * SECOND, updated_at=NOW - 300 * SECOND),
        ),
    )  # fmt: skip
    running = TaskSpec(
        status="in_progress", name="billing", namespace="payments",
        created_at=NOW - timedelta(days=2),
        steps=(
            StepSpec("x", status="in_progress", attempts=1, last_attempted_at=NOW - 60 * SECOND,
                     lease_expires_at=NOW - SECOND),
            StepSpec("y", status="error", attempts=1, next_retry_at=NOW - SECOND,
                     last_attempted_at=NOW - 60 * SECOND, updated_at=NOW - 50 * SECOND),
            StepSpec("z"),
            StepSpec("w", parents=(0,)),
        ),
    )  # fmt: skip
    with RawDb(db_url) as raw:
        inserted = (raw.insert_task(done), raw.insert_task(failed), raw.insert_task(running))
        raw.insert_worker("live", heartbeat=NOW - 89 * SECOND, stopped=None)
        raw.insert_worker("silent", heartbeat=NOW - 91 * SECOND, stopped=None)
        raw.insert_worker("stopped", heartbeat=NOW - SECOND, stopped=NOW - SECOND)
    return inserted


def test_system_health_counts_on_a_known_dataset(database: Database, db_url: str) -> None:
    # Given a complete, a failed and a running task, and three workers
    _known_dataset(db_url)

    # When the health counts are taken
    with database.read() as conn:
        counts = system_health_counts(conn, NOW)

    # Then every count is the hand-checked one
    assert counts == SystemHealthCounts(
        total_tasks=3, pending_tasks=0, in_progress_tasks=1, complete_tasks=1, error_tasks=1,
        cancelled_tasks=0, resolved_manually_tasks=0,
        total_steps=8, pending_steps=2, in_progress_steps=1, complete_steps=3, error_steps=2,
        retrying_steps=1, exhausted_steps=1,
        claimable_steps=2,  # the retrying step (due) and the root pending step z
        expired_leases=1, active_workers=1,
    )  # fmt: skip


def test_analytics_metrics_on_a_known_dataset(database: Database, db_url: str) -> None:
    # Given the known dataset
    _known_dataset(db_url)
    since = NOW - timedelta(hours=1)

    # When the metrics for the last hour are taken
    with database.read() as conn:
        metrics = analytics_metrics(conn, since, NOW)

    # Then counts, rates, durations and throughput are the hand-checked ones
    assert metrics == AnalyticsMetrics(
        analysis_period_start=since, calculated_at=NOW,
        active_tasks_count=1, total_namespaces_count=2, unique_task_types_count=3,
        tasks_created=2,  # the running task was created two days ago
        tasks_completed=1, tasks_failed=1, steps_completed=3,
        steps_failed=2,  # the permanent failure and the one waiting to retry
        completion_rate=0.5, error_rate=0.5,
        avg_task_duration_seconds=3000.0,
        avg_step_duration_seconds=round((20 + 40 + 10) / 3, 6),
        task_throughput_per_minute=round(1 / 60, 6),
        step_throughput_per_minute=0.05,
    )  # fmt: skip


def test_slowest_steps_and_tasks_on_a_known_dataset(database: Database, db_url: str) -> None:
    # Given the known dataset
    done, failed, _ = _known_dataset(db_url)

    # When the slowest steps and tasks of the last hour are listed
    with database.read() as conn:
        steps = slowest_steps(conn, NOW - timedelta(hours=1), 2)
        tasks = slowest_tasks(conn, NOW - timedelta(hours=1), 10)
        none_yet = slowest_tasks(conn, NOW + SECOND, 10)

    # Then the slowest come first, measured from the last attempt
    assert steps == [
        SlowStep(workflow_step_id=done.step_ids[1], task_id=done.task_id,
                 namespace="default", task_name="report", version="1.0.0", step_name="y",
                 status="complete", attempts=1, duration_seconds=40.0,
                 completed_at=NOW - 20 * 60 * SECOND + 40 * SECOND),
        SlowStep(workflow_step_id=done.step_ids[0], task_id=done.task_id,
                 namespace="default", task_name="report", version="1.0.0", step_name="x",
                 status="complete", attempts=2, duration_seconds=20.0,
                 completed_at=NOW - 3600 * SECOND + 120 * SECOND),
    ]  # fmt: skip
    assert tasks == [
        SlowTask(task_id=done.task_id, namespace="default", name="report", version="1.0.0",
                 status="complete", total_steps=2, duration_seconds=3000.0,
                 created_at=NOW - timedelta(hours=1), completed_at=NOW - timedelta(minutes=10)),
    ]  # fmt: skip
    assert none_yet == []
    assert failed.task_id not in {t.task_id for t in tasks}


def test_step_timeline_on_a_known_dataset(database: Database, db_url: str) -> None:
    # Given the known dataset
    _known_dataset(db_url)
    since = NOW - timedelta(hours=1)
    half_hour = timedelta(minutes=30)

    # When the last hour's timeline is taken in half hours
    with database.read() as conn:
        buckets = step_timeline(conn, since, NOW, half_hour)

    # Then each step that finished counts in the bucket it finished in
    assert buckets == [
        TimelineBucket(start=since, completed=1, failed=0, error_rate=0.0,
                       p50_seconds=20.0, p95_seconds=20.0, p99_seconds=20.0),
        # 10 s and 40 s complete; the permanent failure and the retrying step failed
        TimelineBucket(start=since + half_hour, completed=2, failed=2, error_rate=0.5,
                       p50_seconds=10.0, p95_seconds=40.0, p99_seconds=40.0),
    ]  # fmt: skip

    # And a window that is not a whole number of buckets ends in one that reaches past NOW,
    # with nothing in it
    with database.read() as conn:
        longer = step_timeline(conn, since - half_hour, NOW + SECOND, timedelta(hours=1))
    assert [(b.start, b.completed, b.failed) for b in longer] == [
        (since - half_hour, 1, 0), (since + half_hour, 2, 2),
    ]  # fmt: skip

    # And a window that starts after NOW has no bucket yet
    with database.read() as conn:
        assert step_timeline(conn, NOW + SECOND, NOW, half_hour) == []


def test_step_timeline_percentiles_are_nearest_rank(database: Database, db_url: str) -> None:
    # Given 100 steps that took 1 s to 100 s, in a shuffled order, all finished a minute ago
    finished = NOW - timedelta(minutes=1)
    order = [(i * 37) % 100 + 1 for i in range(100)]
    steps = tuple(
        StepSpec(f"s{n}", status="complete", attempts=1,
                 last_attempted_at=finished - n * SECOND, completed_at=finished)
        for n in order
    )  # fmt: skip
    with RawDb(db_url) as raw:
        raw.insert_task(TaskSpec(status="complete", completed_at=finished, steps=steps))

    # When the last hour's timeline is taken in one bucket
    with database.read() as conn:
        (bucket,) = step_timeline(conn, NOW - timedelta(hours=1), NOW, timedelta(hours=2))

    # Then the percentiles are the 50th, 95th and 99th durations
    assert (bucket.completed, bucket.p50_seconds, bucket.p95_seconds, bucket.p99_seconds) == (
        100,
        50.0,
        95.0,
        99.0,
    )


def test_step_timeline_refuses_a_bucket_that_is_not_whole_seconds(database: Database) -> None:
    with database.read() as conn, pytest.raises(ValueError, match="whole number of seconds"):
        step_timeline(conn, NOW - timedelta(hours=1), NOW, timedelta(milliseconds=1500))
