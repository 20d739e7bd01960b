"""Inspection: readiness, health, analytics, history and the event log, read-only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tasker.engine import coverage, flow
from tasker.exceptions import NotFound
from tasker.facade.core import Core
from tasker.serialization import event_json, transition_json
from tasker.store import readiness as readiness_sql
from tasker.store.database import Connection, Row


class Inspection(Core):
    def readiness(self, task_id: int) -> list[readiness_sql.StepReadiness]:
        """The readiness rows of the task's steps (SQL), with ``no_worker_for_handler`` on
        ready steps that no live worker serves while some worker is live (``coverage``)."""
        self.task_status(task_id)
        now = self.now()

        def work(conn: Connection) -> list[readiness_sql.StepReadiness]:
            rows = readiness_sql.step_readiness(conn, task_id, now)
            return coverage.with_worker_coverage(conn, rows, now, self.settings.lease_seconds)

        return self.read(work)

    def execution_context(self, task_id: int) -> readiness_sql.TaskExecutionContext:
        found = self.read(lambda c: readiness_sql.execution_context(c, task_id, self.now()))
        if found is None:
            raise NotFound(f"task {task_id} does not exist")
        return found

    def flow_waits(self, task_id: int) -> list[dict[str, Any]]:
        """What the task's steps held back by a concurrency or rate limit wait for."""
        return self.read(lambda c: flow.waits(c, task_id))

    def dependency_levels(self, task_id: int) -> dict[int, int]:
        self.task_status(task_id)
        return self.read(lambda c: readiness_sql.dependency_levels(c, task_id))

    def health_counts(self) -> readiness_sql.SystemHealthCounts:
        """``get_system_health_counts()``: tasks and steps by state, the queue, leases."""
        now = self.now()
        return self.read(lambda c: readiness_sql.system_health_counts(c, now))

    def analytics(self, since: datetime) -> readiness_sql.AnalyticsMetrics:
        """``get_analytics_metrics(since)``: counts, rates and durations since then."""
        now = self.now()
        return self.read(lambda c: readiness_sql.analytics_metrics(c, since, now))

    def step_timeline(
        self, since: datetime, bucket: timedelta, until: datetime | None = None
    ) -> list[readiness_sql.TimelineBucket]:
        """Steps completed and failed, and duration percentiles, per ``bucket`` from
        ``since`` to ``until`` (default: now)."""
        end = self.now() if until is None else until
        return self.read(lambda c: readiness_sql.step_timeline(c, since, end, bucket))

    def slowest(
        self, since: datetime, limit: int
    ) -> tuple[list[readiness_sql.SlowStep], list[readiness_sql.SlowTask]]:
        """The slowest steps and tasks finished since ``since``, at most ``limit`` each."""

        def work(
            conn: Connection,
        ) -> tuple[list[readiness_sql.SlowStep], list[readiness_sql.SlowTask]]:
            return (
                readiness_sql.slowest_steps(conn, since, limit),
                readiness_sql.slowest_tasks(conn, since, limit),
            )

        return self.read(work)

    def transitions(self, task_id: int) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[dict[str, Any]]:
            if conn.fetch_one("get_task", task_id=task_id) is None:
                raise NotFound(f"task {task_id} does not exist")
            rows = conn.fetch_all("task_transitions", task_id=task_id)
            rows += conn.fetch_all("step_transitions_of_task", task_id=task_id)
            return [transition_json(r) for r in rows]

        return self.read(work)

    def transition_page(
        self, task_id: int, *, limit: int, after: tuple[str, int] | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
        """Up to ``limit`` rows of :meth:`transitions`, in its order (the task's own rows by
        sort key, then its steps' rows by id), after the position ``after``: ``("task",
        SORT_KEY)`` or ``("step", ID)``, None for the start. Returns the rows and the
        position the next page starts after (None: nothing follows). Keyset pagination:
        each page costs the same however deep it is."""
        entity, position = after or ("task", 0)

        def work(conn: Connection) -> tuple[list[Row], tuple[str, int] | None]:
            if conn.fetch_one("get_task", task_id=task_id) is None:
                raise NotFound(f"task {task_id} does not exist")
            rows: list[Row] = []
            step_after = position
            if entity == "task":
                rows = conn.fetch_all(
                    "task_transitions_page",
                    task_id=task_id,
                    after_sort_key=position,
                    limit=limit + 1,
                )
                if len(rows) > limit:
                    return rows[:limit], ("task", rows[limit - 1]["sort_key"])
                step_after = 0
            room = limit - len(rows)
            steps = conn.fetch_all(
                "step_transitions_of_task_page",
                task_id=task_id,
                after_id=step_after,
                limit=room + 1,
            )
            if len(steps) <= room:
                return rows + steps, None
            steps = steps[:room]
            return rows + steps, ("step", steps[-1]["id"] if steps else step_after)

        rows, following = self.read(work)
        return [transition_json(r) for r in rows], following

    def events(
        self, after_id: int = 0, *, task_id: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        rows = self.read(
            lambda c: c.fetch_all("events_after", after_id=after_id, task_id=task_id, limit=limit)
        )
        return [event_json(r) for r in rows]

    def event_page(
        self,
        after_id: int = 0,
        *,
        task_id: int | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events after the cursor ``after_id`` (an event id), oldest first, of one task
        and one event name when given. Ids follow commit order, so the last id returned
        is a cursor that never skips an event (docs/architecture.md, Events)."""
        rows = self.read(
            lambda c: c.fetch_all(
                "events_page", after_id=after_id, task_id=task_id, name=name, limit=limit
            )
        )
        return [event_json(r) for r in rows]

    def last_event_id(self) -> int:
        """The newest event's id (0: none yet): a cursor from which to follow the log."""
        row = self.read(lambda c: c.fetch_one("last_event_id"))
        return int(row["id"]) if row else 0
