"""A reference model of the readiness rules, random reachable DAG states, and raw inserts.

The model is plain Python written from the rules in docs/sql-functions.md, independent of
the SQL; the tests compare the two. States are inserted with raw driver connections
(``sqlite3`` / ``psycopg``) so the package carries no test-only queries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tasker.store.readiness import StepReadiness, TaskExecutionContext

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DONE = frozenset({"complete", "resolved_manually"})
FINISHED = DONE | {"skipped"}  # a finished parent: counts towards a step's release


@dataclass(frozen=True)
class StepSpec:
    name: str
    parents: tuple[int, ...] = ()  # positions of the parents, all earlier than this step
    status: str = "pending"
    attempts: int = 0
    max_attempts: int = 3
    retryable: bool = True
    next_retry_at: datetime | None = None
    last_attempted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    lease_expires_at: datetime | None = None
    updated_at: datetime | None = None
    join: str = "all"  # the join rule over skipped parents ("all" or "any")
    wait_for: str | None = None  # the signal it waits for, once its parents are done
    signalled: bool = False  # whether that signal has come
    child_task_id: int | None = None  # the child task a running step waits for
    # Held back by flow control ('concurrency_limit' or 'rate_limited') until flow_until.
    flow_wait: str | None = None
    flow_until: datetime | None = None


@dataclass(frozen=True)
class TaskSpec:
    steps: tuple[StepSpec, ...]
    status: str = "in_progress"
    namespace: str = "default"
    name: str = "flow"
    version: str = "1.0.0"
    created_at: datetime = NOW - timedelta(hours=1)
    completed_at: datetime | None = None
    updated_at: datetime | None = None
    run_at: datetime | None = None  # a delayed start: no step is ready before it


@dataclass(frozen=True)
class Inserted:
    task_id: int
    step_ids: tuple[int, ...]  # by position


# --- the engine's incremental columns -------------------------------------------------------


def remaining_parents(task: TaskSpec, position: int) -> int:
    """Parents not finished (complete, resolved or skipped), as the engine keeps the counter."""
    return sum(task.steps[p].status not in FINISHED for p in task.steps[position].parents)


def skipped_parents(task: TaskSpec, position: int) -> int:
    return sum(task.steps[p].status == "skipped" for p in task.steps[position].parents)


def claimable_at(task: TaskSpec, position: int) -> datetime | None:
    """When the engine lets a worker claim the step, or None while it may not be claimed."""
    step = task.steps[position]
    if step.flow_wait is not None:
        return step.flow_until
    released = remaining_parents(task, position) == 0 and (
        skipped_parents(task, position) < len(step.parents)
        if step.join == "any"
        else skipped_parents(task, position) == 0
    )
    if step.status == "pending" and released and (step.wait_for is None or step.signalled):
        finished = [task.steps[p].completed_at for p in step.parents]
        released_at = max((t for t in finished if t is not None), default=task.created_at)
        return max(released_at, task.run_at) if task.run_at is not None else released_at
    if step.status == "error" and step.retryable and step.attempts < step.max_attempts:
        return step.next_retry_at
    return None


# --- the reference model of the readiness rules -----------------------------------------------


def expected_readiness(
    task: TaskSpec, ids: Inserted, now: datetime, positions: Sequence[int] | None = None
) -> list[StepReadiness]:
    rows = []
    for position, step in enumerate(task.steps):
        if positions is not None and position not in positions:
            continue
        done = sum(task.steps[p].status in DONE for p in step.parents)
        skipped = sum(task.steps[p].status == "skipped" for p in step.parents)
        if step.join == "any":
            satisfied = not step.parents or (done + skipped == len(step.parents) and done > 0)
        else:
            satisfied = done == len(step.parents)
        signal_missing = step.wait_for is not None and not step.signalled
        scheduled = task.run_at is not None and task.run_at > now
        eligible = (
            step.status == "error"
            and step.retryable
            and step.attempts < step.max_attempts
            and (step.next_retry_at is None or step.next_retry_at <= now)
        )
        flow_waiting = step.flow_wait is not None and (
            step.flow_until is None or step.flow_until > now
        )
        ready = (
            satisfied
            and not flow_waiting
            and ((step.status == "pending" and not signal_missing and not scheduled) or eligible)
        )
        rows.append(
            StepReadiness(
                workflow_step_id=ids.step_ids[position],
                task_id=ids.task_id,
                name=step.name,
                current_state=step.status,
                dependencies_satisfied=satisfied,
                retry_eligible=eligible,
                ready_for_execution=ready,
                total_parents=len(step.parents),
                completed_parents=done,
                attempts=step.attempts,
                max_attempts=step.max_attempts,
                next_retry_at=step.next_retry_at,
                last_attempted_at=step.last_attempted_at,
                blocking_reason=None
                if ready
                else blocking_reason(
                    step,
                    eligible,
                    satisfied and signal_missing,
                    satisfied and scheduled,
                    flow_waiting,
                ),
            )
        )
    return rows


def blocking_reason(
    step: StepSpec,
    eligible: bool,
    waiting_for_signal: bool = False,
    scheduled: bool = False,
    flow_waiting: bool = False,
) -> str:
    if step.status in DONE:
        return "finished"
    if step.status == "in_progress" and step.child_task_id is not None:
        return "waiting_for_child"
    if step.status in ("skipped", "cancelled", "in_progress"):
        return step.status
    if flow_waiting and step.flow_wait is not None:
        return step.flow_wait
    if step.status == "error" and not step.retryable:
        return "not_retryable"
    if step.status == "error" and step.attempts >= step.max_attempts:
        return "retries_exhausted"
    if step.status == "error" and not eligible:
        return "waiting_for_backoff"
    if step.status == "pending" and scheduled:
        return "scheduled"
    if step.status == "pending" and waiting_for_signal:
        return "waiting_for_signal"
    return "dependencies_not_satisfied"


def expected_context(task: TaskSpec, ids: Inserted, now: datetime) -> TaskExecutionContext:
    rows = expected_readiness(task, ids, now)
    states = [r.current_state for r in rows]
    reasons = [r.blocking_reason for r in rows]
    total, done = len(rows), sum(s in FINISHED for s in states)
    ready = sum(r.ready_for_execution for r in rows)
    running, failed = states.count("in_progress"), states.count("error")
    if task.status == "cancelled":
        status = "cancelled"
    elif ready:
        status = "has_ready_steps"
    elif running:
        status = "processing"
    elif done == total:
        status = "all_complete"
    elif "not_retryable" in reasons or "retries_exhausted" in reasons:
        status = "blocked_by_failures"
    elif "waiting_for_backoff" in reasons:
        status = "waiting_for_retry"
    elif "cancelled" in states:
        status = "cancelled"
    else:
        status = "waiting_for_dependencies"
    action = {
        "has_ready_steps": "execute_ready_steps",
        "processing": "wait_for_completion",
        "all_complete": "none" if task.status in DONE else "finalize_task",
        "blocked_by_failures": "handle_failures",
        "waiting_for_retry": "wait_for_completion",
        "waiting_for_dependencies": "wait_for_dependencies",
        "cancelled": "none",
    }[status]
    if status == "cancelled":
        health = "unknown"
    elif status == "blocked_by_failures":
        health = "blocked"
    else:
        health = "recovering" if failed else "healthy"
    return TaskExecutionContext(
        task_id=ids.task_id,
        status=task.status,
        total_steps=total,
        pending_steps=states.count("pending"),
        in_progress_steps=running,
        completed_steps=done,
        failed_steps=failed,
        ready_steps=ready,
        execution_status=status,
        recommended_action=action,
        completion_percentage=round(100.0 * done / total, 2) if total else 0.0,
        health_status=health,
    )


def expected_levels(task: TaskSpec) -> list[int]:
    """Longest distance from a root, by position (parents always come first)."""
    levels: list[int] = []
    for step in task.steps:
        levels.append(max((levels[p] + 1 for p in step.parents), default=0))
    return levels


# --- random reachable states ------------------------------------------------------------------

# Times around `now`, the boundary (exactly now) weighted up since that is where `<` vs `<=` bites.
_offsets = st.sampled_from([-3600, -1, 0, 0, 0, 0, 1, 3600])
_micros = st.sampled_from([0, 0, 0, 1, 500_000, 999_999])


@st.composite
def task_specs(draw: st.DrawFn, now: datetime = NOW) -> TaskSpec:
    """A random DAG of 5-25 steps in a state reachable by the step state machine."""
    count = draw(st.integers(5, 25))
    # How far the run has got: more finished steps push the frontier deeper into the DAG.
    progress = draw(st.integers(0, 4))
    startable = ["complete"] * (2 * progress) + ["resolved_manually"] + [
        "pending", "in_progress", "error", "error", "error", "cancelled",
    ]  # fmt: skip
    steps: list[StepSpec] = []
    for position in range(count):
        parents: tuple[int, ...] = ()
        if position:
            chosen = draw(
                st.lists(st.integers(0, position - 1), unique=True, max_size=min(position, 4))
            )
            parents = tuple(sorted(chosen))
        join = draw(st.sampled_from(["all", "all", "any"])) if parents else "all"
        wait_for = draw(st.sampled_from([None, None, None, f"sig{position}"]))
        signalled = wait_for is not None and draw(st.booleans())
        states = [steps[p].status for p in parents]
        done, skipped = sum(s in DONE for s in states), states.count("skipped")
        # The join rules: skipped parents skip a step at once (all: one of them; any:
        # all of them, once every parent finished). A step leaves pending only once its
        # parents let it (all: every one done; any: all finished, one done) and its
        # signal, if it waits for one, came. A branch not taken skips a released child.
        # Cancelling the task cancels waiting steps, so cancelled is reachable from pending.
        if join == "all":
            must_skip = skipped > 0
            released = done == len(parents)
        else:
            must_skip = parents != () and skipped == len(parents)
            released = not parents or (done + skipped == len(parents) and done > 0)
        if must_skip:
            choices = ["skipped"]
        elif released and (wait_for is None or signalled):
            choices = startable + (["skipped"] if parents else [])
        else:
            choices = ["pending"] * 4 + ["cancelled"]
        status = draw(st.sampled_from(choices))
        step = draw(_step_in(status, f"s{position}", parents, now))
        # A running step may be one waiting for its child task (a child workflow).
        child = (
            draw(st.sampled_from([None, None, 1000 + position]))
            if status == "in_progress"
            else None
        )
        steps.append(
            replace(step, join=join, wait_for=wait_for, signalled=signalled, child_task_id=child)
        )
    return TaskSpec(
        steps=tuple(steps), status=draw(_task_status(steps)), run_at=draw(_run_at(steps))
    )


# Before its run_at a task can only have had its steps cancelled, resolved or skipped by hand.
NOT_STARTED = frozenset({"pending", "cancelled", "resolved_manually", "skipped"})


def _run_at(steps: Sequence[StepSpec], now: datetime = NOW) -> st.SearchStrategy[datetime | None]:
    """A delayed start: any time for a task none of whose steps ran, else a past one."""
    offsets = [-3600, -1, 0] + ([1, 3600] if {s.status for s in steps} <= NOT_STARTED else [])
    return st.one_of(
        st.none(),
        st.builds(
            lambda s, us: now + timedelta(seconds=s, microseconds=us),
            st.sampled_from(offsets),
            _micros,
        ),
    )


def _task_status(steps: Sequence[StepSpec]) -> st.SearchStrategy[str]:
    states = {s.status for s in steps}
    if states == {"pending"}:
        return st.sampled_from(["pending", "cancelled"])
    if states <= FINISHED:
        return st.sampled_from(["in_progress", "complete", "resolved_manually"])
    return st.sampled_from(["in_progress", "in_progress", "in_progress", "error", "cancelled"])


@st.composite
def _step_in(
    draw: st.DrawFn, status: str, name: str, parents: tuple[int, ...], now: datetime
) -> StepSpec:
    max_attempts = draw(st.integers(1, 4))
    micros = timedelta(microseconds=draw(_micros))
    attempted = now - timedelta(seconds=draw(st.integers(2, 600))) + micros
    step = StepSpec(name=name, parents=parents, status=status, max_attempts=max_attempts)
    if status == "pending":
        # Pending again after a manual retry keeps the time of its last attempt.
        return replace(step, last_attempted_at=draw(st.sampled_from([None, attempted])))
    if status == "cancelled":
        return replace(step, attempts=draw(st.integers(0, max_attempts)))
    if status == "skipped":
        return replace(step, completed_at=attempted)
    attempts = draw(st.integers(1, max_attempts))
    step = replace(step, attempts=attempts, last_attempted_at=attempted, started_at=attempted)
    if status == "in_progress":
        lease = now + timedelta(seconds=draw(_offsets)) + micros
        return replace(step, lease_expires_at=lease)
    if status in DONE:
        return replace(step, completed_at=attempted + timedelta(seconds=1))
    retryable = draw(st.booleans())
    if retryable and attempts < max_attempts:
        retry_at: datetime | None = now + timedelta(
            seconds=draw(_offsets), microseconds=draw(_micros)
        )
    else:
        # Irrelevant once permanently failed: the rules must ignore whatever is left here.
        retry_at = draw(st.sampled_from([None, now - timedelta(seconds=5), now + micros]))
    return replace(step, retryable=retryable, next_retry_at=retry_at)


# --- raw inserts ------------------------------------------------------------------------------

STEP_COLUMNS = (
    "id", "task_id", "namespace", "name", "position", "handler", "status", "attempts",
    "max_attempts", "retryable", "backoff_base_seconds", "backoff_max_seconds",
    "backoff_jitter", "total_parents", "remaining_parents", "claimable_at", "next_retry_at",
    "last_attempted_at", "lease_expires_at", "created_at", "updated_at", "started_at",
    "completed_at",
)  # fmt: skip


@dataclass
class RawDb:
    """Inserts through a raw driver connection; the same SQL on both dialects."""

    url: str
    _conn: Any = field(init=False)
    _sqlite: bool = field(init=False)

    def __post_init__(self) -> None:
        self._sqlite = self.url.startswith("sqlite:")
        if self._sqlite:
            self._conn = sqlite3.connect(self.url[len("sqlite:///") :])
        else:
            self._conn = psycopg.connect(self.url, options="-c search_path=tasker")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RawDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _value(self, value: Any) -> Any:
        if not self._sqlite:
            return Jsonb(value) if isinstance(value, dict | list) else value
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same keys) and commit."""
        if not rows:
            return
        columns = list(rows[0])
        mark = "?" if self._sqlite else "%s"
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)})"
        )
        values = [tuple(self._value(row[c]) for c in columns) for row in rows]
        if self._sqlite:
            with self._conn:
                self._conn.executemany(sql, values)
        else:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.executemany(sql, values)

    def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``?`` placeholders on both dialects)."""
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        rows = list(self._conn.execute(sql, params).fetchall())
        if not self._sqlite:
            self._conn.commit()  # end the read transaction psycopg opened
        return rows

    def next_id(self, table: str) -> int:
        return int(self.fetch(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")[0][0])

    def template_id(self, namespace: str, name: str, version: str) -> int:
        """The id of a template row for ``namespace/name@version``, created on first use."""
        found = self.fetch(
            "SELECT t.id FROM templates t JOIN namespaces n ON n.id = t.namespace_id "
            "WHERE n.name = ? AND t.name = ? AND t.version = ?",
            namespace,
            name,
            version,
        )
        if found:
            return int(found[0][0])
        ns = self.fetch("SELECT id FROM namespaces WHERE name = ?", namespace)
        if ns:
            ns_id = int(ns[0][0])
        else:
            ns_id = self.next_id("namespaces")
            self.insert("namespaces", [{"id": ns_id, "name": namespace, "created_at": NOW}])
        tpl_id = self.next_id("templates")
        self.insert(
            "templates",
            [
                {
                    "id": tpl_id,
                    "namespace_id": ns_id,
                    "name": name,
                    "version": version,
                    "definition": {},
                    "created_at": NOW,
                }
            ],
        )
        return tpl_id

    def insert_task(self, task: TaskSpec) -> Inserted:
        """Insert ``task`` with explicit ids (the next free ones), so two fresh databases
        given the same tasks in the same order get the same ids."""
        template_id = self.template_id(task.namespace, task.name, task.version)
        task_id = self.next_id("tasks")
        first_step = self.next_id("steps")
        step_ids = tuple(range(first_step, first_step + len(task.steps)))
        self.insert(
            "tasks",
            [
                {
                    "id": task_id,
                    "template_id": template_id,
                    "namespace": task.namespace,
                    "name": task.name,
                    "version": task.version,
                    "status": task.status,
                    "context": {},
                    "total_steps": len(task.steps),
                    "done_steps": sum(s.status in FINISHED for s in task.steps),
                    "created_at": task.created_at,
                    "updated_at": task.updated_at or task.completed_at or task.created_at,
                    "completed_at": task.completed_at,
                    "run_at": task.run_at,
                }
            ],
        )
        self.insert(
            "steps", [self._step_row(task, task_id, step_ids, p) for p in range(len(step_ids))]
        )
        self.insert(
            "step_edges",
            [
                {"task_id": task_id, "from_step_id": step_ids[p], "to_step_id": step_ids[c]}
                for c, step in enumerate(task.steps)
                for p in step.parents
            ],
        )
        self.insert(
            "task_signals",
            [
                {"task_id": task_id, "name": step.wait_for, "payload": {}, "created_at": NOW}
                for step in task.steps
                if step.wait_for is not None and step.signalled
            ],
        )
        return Inserted(task_id, step_ids)

    def _step_row(
        self, task: TaskSpec, task_id: int, step_ids: tuple[int, ...], position: int
    ) -> dict[str, Any]:
        step = task.steps[position]
        return {
            "id": step_ids[position],
            "task_id": task_id,
            "namespace": task.namespace,
            "name": step.name,
            "position": position,
            "handler": "tests.handlers:noop",
            "status": step.status,
            "attempts": step.attempts,
            "max_attempts": step.max_attempts,
            "retryable": step.retryable,
            "backoff_base_seconds": 1.0,
            "backoff_max_seconds": 60.0,
            "backoff_jitter": 0.1,
            "total_parents": len(step.parents),
            "remaining_parents": remaining_parents(task, position),
            "skipped_parents": skipped_parents(task, position),
            "join_mode": step.join,
            "wait_for": step.wait_for,
            "child_task_id": step.child_task_id,
            "flow_wait": step.flow_wait,
            "claimable_at": claimable_at(task, position),
            "next_retry_at": step.next_retry_at,
            "last_attempted_at": step.last_attempted_at,
            "lease_expires_at": step.lease_expires_at,
            "created_at": task.created_at,
            "updated_at": step.updated_at or step.completed_at or task.created_at,
            "started_at": step.started_at,
            "completed_at": step.completed_at,
        }

    def claimable_at_by_id(self, task_id: int) -> dict[int, datetime | None]:
        """The stored incremental column, read back as the claim query would see it."""
        rows = self.fetch("SELECT id, claimable_at FROM steps WHERE task_id = ?", task_id)
        return {int(i): _parse(t) for i, t in rows}

    def insert_worker(self, worker_id: str, heartbeat: datetime, stopped: datetime | None) -> None:
        self.insert(
            "workers",
            [
                {
                    "id": worker_id,
                    "hostname": "host",
                    "pid": 1,
                    "namespaces": [],
                    "concurrency": 1,
                    "started_at": heartbeat,
                    "last_heartbeat_at": heartbeat,
                    "stopped_at": stopped,
                }
            ],
        )


def _parse(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def chain(count: int) -> TaskSpec:
    """``count`` pending steps, each depending on the one before."""
    return TaskSpec(
        steps=tuple(StepSpec(name=f"s{i}", parents=(i - 1,) if i else ()) for i in range(count)),
        status="pending",
    )


def diamond(*states: str, **step_changes: dict[str, Any]) -> TaskSpec:
    """A -> B, A -> C, B and C -> D, with steps a, b, c, d in the four given states.

    ``step_changes`` maps a step name to extra StepSpec fields (attempts, retry time...)."""
    assert len(states) == 4
    shape: dict[str, tuple[int, ...]] = {"a": (), "b": (0,), "c": (0,), "d": (1, 2)}
    steps = []
    for (name, parents), status in zip(shape.items(), states, strict=True):
        step = StepSpec(name=name, parents=parents, status=status)
        if status != "pending":
            step = replace(step, attempts=1, last_attempted_at=NOW - timedelta(seconds=30))
        if status in DONE:
            step = replace(step, completed_at=NOW - timedelta(seconds=20))
        steps.append(replace(step, **step_changes.get(name, {})))
    return TaskSpec(steps=tuple(steps))
