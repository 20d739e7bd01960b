"""Operator actions: cancel a task, retry a task or a step, resolve a step by hand.

Each action checks the state tables, writes the actor and reason into the history,
and runs in one transaction with the task row locked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasker.engine.attempts import branch_problem
from tasker.engine.children import children_of, start_children
from tasker.engine.finalization import set_task_status
from tasker.engine.history import Change, HistoryWriter, step_event
from tasker.engine.maps import settle_groups
from tasker.engine.parents import finalize, settle_parents
from tasker.engine.release import BRANCH_NOT_TAKEN, expand, release_children, skip_steps
from tasker.engine.waits import begin_waits
from tasker.exceptions import InvalidTransition, NotFound, ValidationError
from tasker.payloads import check_storable, check_text
from tasker.states import STEP_TRANSITIONS, TASK_TRANSITIONS, State, can_transition
from tasker.store.database import Connection, Json, Row


def _lock_task(conn: Connection, task_id: int) -> Row:
    rows = conn.fetch_all("lock_tasks", task_ids=[task_id])
    if not rows:
        raise NotFound(f"task {task_id} does not exist")
    return rows[0]


def _lock_step(conn: Connection, task_id: int, step_name: str) -> Row:
    rows = conn.fetch_all("lock_task_steps", task_id=task_id, names=[step_name])
    if not rows:
        raise NotFound(f"task {task_id} has no step {step_name!r}")
    return rows[0]


def _check_reason(reason: str | None) -> None:
    """A reason is stored in the history: refuse one no database can store."""
    if reason is not None:
        check_text(reason, "reason")


def _step_label(task_id: int, step_name: str) -> str:
    return f"step {step_name!r} of task {task_id}"


def _check_task_open(task: Row) -> None:
    """A step of a finished task cannot be reopened."""
    if task["status"] in ("complete", "cancelled", "resolved_manually"):
        raise InvalidTransition(
            f"task {task['id']}",
            task["status"],
            "in_progress",
            f"task {task['id']} is {task['status']!r}: its steps can no longer change",
        )


def _check_task(task: Row, target: State) -> bool:
    """False for a no-op (already there); raises when the table forbids the change."""
    current = State(task["status"])
    if not can_transition(TASK_TRANSITIONS, current, target):
        raise InvalidTransition(f"task {task['id']}", current, target)
    return current != target


def _set_steps(
    conn: Connection,
    history: HistoryWriter,
    steps: list[tuple[Row, State]],
    now: datetime,
    *,
    actor: str | None,
    reason: str | None,
    results: Any = None,
) -> list[Row]:
    rows = [
        {
            "id": step["id"],
            "from_state": step["status"],
            "to_state": target.value,
            "reset_attempts": target == State.PENDING,
            "results": results if target == State.RESOLVED_MANUALLY else None,
        }
        for step, target in steps
    ]
    if not rows:
        return []
    changed = conn.fetch_all("set_steps_status", rows=Json(rows), now=now)
    by_id = {step["id"]: step for step, _ in steps}
    for row in changed:
        history.change(
            Change(
                row["task_id"],
                by_id[row["id"]]["status"],
                row["status"],
                row["transition_count"],
                step_event(row["status"]),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason=reason,
                payload={"attempt": row["attempts"], "max_attempts": row["max_attempts"]},
            )
        )
    return changed


def cancel_task(
    conn: Connection, task_id: int, now: datetime, *, actor: str | None, reason: str | None
) -> bool:
    """Cancel pending and failed steps and the task, and its unfinished child tasks (and
    theirs). Running steps finish, but their results are discarded when they report.
    A child task cancelled on its own fails the step that started it. Returns False when
    already cancelled."""
    _check_reason(reason)
    task = _lock_task(conn, task_id)
    if not _check_task(task, State.CANCELLED):
        return False
    history = HistoryWriter()
    steps = conn.fetch_all("lock_task_steps", task_id=task_id, names=None)
    # A map group in progress, or a step waiting for its child task, never reports by
    # itself: it is cancelled with the task.
    to_cancel = [
        (s, State.CANCELLED)
        for s in steps
        if s["status"] in ("pending", "error")
        or (
            s["status"] == "in_progress"
            and (s["map_path"] is not None or s["child_task_id"] is not None)
        )
    ]
    _set_steps(conn, history, to_cancel, now, actor=actor, reason=reason)
    set_task_status(
        conn, history, task_id, task["status"], "cancelled", now, actor=actor, reason=reason
    )
    settle_parents(conn, history, {task_id: "cancelled"}, now, actor=actor)
    history.flush(conn, now)
    for child in children_of(conn, task_id):
        if child["status"] in ("pending", "in_progress", "error"):
            cancel_task(
                conn,
                child["id"],
                now,
                actor=actor,
                reason=reason or f"parent task {task_id} was cancelled",
            )
    return True


def retry_task(
    conn: Connection, task_id: int, now: datetime, *, actor: str | None, reason: str | None
) -> list[str]:
    """Re-open every failed step of a failed task (attempts reset); the task runs again."""
    _check_reason(reason)
    task = _lock_task(conn, task_id)
    if task["status"] != "error":
        raise InvalidTransition(
            f"task {task_id}",
            task["status"],
            "in_progress",
            f"task {task_id} is {task['status']!r}: only a failed task can be retried",
        )
    history = HistoryWriter()
    changed = _rerun(conn, history, task, now, actor, reason)
    _reopen_parent_step(conn, history, task, now, actor, reason)
    conn.execute("notify_steps_ready")
    history.flush(conn, now)
    return [row["name"] for row in changed]


def _rerun(
    conn: Connection,
    history: HistoryWriter,
    task: Row,
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> list[Row]:
    """A failed (locked) task runs again: its failed steps re-open."""
    steps = conn.fetch_all("lock_task_steps", task_id=task["id"], names=None)
    set_task_status(
        conn, history, task["id"], "error", "in_progress", now, actor=actor, reason=reason
    )
    return _reopen(conn, history, [s for s in steps if s["status"] == "error"], now, actor, reason)


def _reopen_parent_step(
    conn: Connection,
    history: HistoryWriter,
    task: Row,
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> None:
    """A child task retried on its own: the step that started it (failed when the child
    did) waits for it again, and a failed parent task runs again, and so on up."""
    if task["parent_step_id"] is None:
        return
    parent = conn.fetch_all("lock_tasks", task_ids=[task["parent_task_id"]])
    steps = [
        s
        for s in (
            conn.fetch_all("lock_task_steps", task_id=parent[0]["id"], names=None) if parent else []
        )
        if s["id"] == task["parent_step_id"] and s["status"] == "error"
    ]
    if not steps:
        return
    _set_steps(conn, history, [(steps[0], State.IN_PROGRESS)], now, actor=actor, reason=reason)
    if steps[0]["group_id"] is not None:
        settle_groups(conn, history, {steps[0]["group_id"]}, now, actor)
    if parent[0]["status"] == "error":
        set_task_status(
            conn, history, parent[0]["id"], "error", "in_progress", now, actor=actor, reason=reason
        )
        _reopen_parent_step(conn, history, parent[0], now, actor, reason)


def _reopen(
    conn: Connection,
    history: HistoryWriter,
    failed: list[Row],
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> list[Row]:
    """Failed steps go back to pending (attempts reset). A map group that has instances
    re-opens its failed instances instead, and its state follows theirs; one whose
    expansion failed expands again. Re-opened waits wait again."""
    groups = [s for s in failed if s["map_path"] is not None]
    progress = {
        g["id"]: g["total"]
        for g in (
            conn.fetch_all("group_progress", group_ids=[g["id"] for g in groups]) if groups else []
        )
    }
    targets = {s["id"]: s for s in failed if s["map_path"] is None or not progress.get(s["id"])}
    for group in groups:
        if progress.get(group["id"]):
            for instance in conn.fetch_all("group_instances", group_id=group["id"], status="error"):
                targets[instance["id"]] = instance
    changed = _set_steps(
        conn,
        history,
        [
            (s, State.PENDING)
            for s in _retry_children(conn, history, list(targets.values()), now, actor, reason)
        ],
        now,
        actor=actor,
        reason=reason,
    )
    reopened = [targets[row["id"]] for row in changed]
    _rewait(conn, history, reopened, now, actor=actor)
    spawning = [
        {**s, "status": "pending"}
        for s in reopened
        if s["workflow"] is not None
        and not s["handler"]
        and s["map_path"] is None
        and s["remaining_parents"] == 0
    ]
    started = start_children(conn, history, spawning, now, actor=actor)
    failed_groups = {r["group_id"] for r in started.failed if r["group_id"] is not None}
    settle_groups(conn, history, failed_groups, now, actor)
    expanded = [s for s in reopened if s["map_path"] is not None and s["remaining_parents"] == 0]
    completed = expand(conn, history, expanded, now, actor).completed
    touched = {s["group_id"] for s in reopened if s["group_id"] is not None}
    completed += settle_groups(conn, history, touched, now, actor).completed
    _release_completed(conn, history, completed, now, actor)
    return changed


def _retry_children(
    conn: Connection,
    history: HistoryWriter,
    failed: list[Row],
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> list[Row]:
    """Failed steps whose child task failed retry that child (its failed steps run
    again; the steps it completed are kept) and wait for it again: a step never starts a
    second child. Returns the other steps, to re-open as usual."""
    others = []
    for step in failed:
        if step["child_task_id"] is None:
            others.append(step)
            continue
        child = conn.fetch_all("lock_tasks", task_ids=[step["child_task_id"]])
        if not child or child[0]["status"] != "error":
            status = child[0]["status"] if child else "deleted"
            raise ValidationError(
                f"cannot retry step {step['name']!r} of task {step['task_id']}: its child task "
                f"{step['child_task_id']} is {status!r} and cannot run again; resolve the step "
                "by hand instead"
            )
        _rerun(conn, history, child[0], now, actor, reason)
        _set_steps(conn, history, [(step, State.IN_PROGRESS)], now, actor=actor, reason=reason)
        if step["group_id"] is not None:
            settle_groups(conn, history, {step["group_id"]}, now, actor)
    return others


def _release_completed(
    conn: Connection, history: HistoryWriter, completed: list[Row], now: datetime, actor: str | None
) -> None:
    """Steps that completed here (a signal's payload, an empty map) release their children;
    they and what that finishes count as done, and their tasks may be final now."""
    if not completed:
        return
    released = release_children(conn, [r["id"] for r in completed], history, now, actor=actor)
    released.add_done(completed)
    _add_done(conn, released.done, now)
    finalize(conn, sorted({r["task_id"] for r in completed}), history, now, actor=actor)


def _rewait(
    conn: Connection, history: HistoryWriter, steps: list[Row], now: datetime, *, actor: str | None
) -> None:
    """Re-opened steps that wait for a signal wait again (or go on, if it came)."""
    waiting = [s for s in steps if s["wait_for"] is not None and s["remaining_parents"] == 0]
    completed, _ = begin_waits(conn, history, waiting, now, actor=actor)
    _release_completed(conn, history, completed, now, actor)


def _add_done(conn: Connection, done: dict[int, int], now: datetime) -> None:
    if done:
        rows = [{"task_id": task_id, "n": n} for task_id, n in done.items() if n]
        conn.execute("add_done_steps", rows=Json(rows), now=now)


def retry_step(
    conn: Connection,
    task_id: int,
    step_name: str,
    now: datetime,
    *,
    actor: str | None,
    reason: str | None,
) -> None:
    """Re-open one failed step with its attempts reset; a failed task runs again."""
    _check_reason(reason)
    task = _lock_task(conn, task_id)
    step = _lock_step(conn, task_id, step_name)
    if step["status"] != "error":
        raise InvalidTransition(
            _step_label(task_id, step_name),
            step["status"],
            "pending",
            f"{_step_label(task_id, step_name)} is {step['status']!r}: "
            "only a failed step can be retried",
        )
    _check_task_open(task)
    history = HistoryWriter()
    if task["status"] == "error":
        set_task_status(
            conn, history, task_id, "error", "in_progress", now, actor=actor, reason=reason
        )
    _reopen(conn, history, [step], now, actor, reason)
    conn.execute("notify_steps_ready")
    history.flush(conn, now)


def resolve_step(
    conn: Connection,
    task_id: int,
    step_name: str,
    now: datetime,
    *,
    actor: str | None,
    reason: str,
    results: Any = None,
    branch: tuple[str, ...] | None = None,
) -> None:
    """Declare a pending or failed step done by hand; its dependents proceed. A step with
    ``branches`` needs ``branch``, the children to run (the others are skipped)."""
    _check_reason(reason)
    check_storable(results, "results")
    task = _lock_task(conn, task_id)
    step = _lock_step(conn, task_id, step_name)
    current = State(step["status"])
    if current == State.RESOLVED_MANUALLY:
        return
    if not can_transition(STEP_TRANSITIONS, current, State.RESOLVED_MANUALLY):
        raise InvalidTransition(_step_label(task_id, step_name), current, State.RESOLVED_MANUALLY)
    _check_task_open(task)
    if step["map_path"] is not None:
        progress = conn.fetch_all("group_progress", group_ids=[step["id"]])
        if progress and progress[0]["total"]:
            raise ValidationError(
                f"cannot resolve map group {_step_label(task_id, step_name)}: it has "
                f"{progress[0]['total']} instances; resolve or retry its failed instances "
                f"({step_name}[N]) instead"
            )
    branches = list(step["branches"] or [])
    problem = branch_problem(step_name, branches, branch)
    if problem is not None:
        hint = ' (--branch NAME, or "branch": [...] in the API)' if branches else ""
        raise ValidationError(f"cannot resolve {_step_label(task_id, step_name)}: {problem}{hint}")
    history = HistoryWriter()
    _set_steps(
        conn,
        history,
        [(step, State.RESOLVED_MANUALLY)],
        now,
        actor=actor,
        reason=reason,
        results=results,
    )
    not_taken = [name for name in branches if branch is not None and name not in branch]
    skipped = skip_steps(
        conn,
        history,
        [s["id"] for s in conn.fetch_all("lock_task_steps", task_id=task_id, names=not_taken)]
        if not_taken
        else [],
        now,
        reason=BRANCH_NOT_TAKEN,
        actor=actor,
    )
    settled = settle_groups(
        conn, history, {step["group_id"]} if step["group_id"] is not None else set(), now, actor
    )
    released = release_children(
        conn,
        [step["id"], *(g["id"] for g in settled.completed)],
        history,
        now,
        skipped_ids=[r["id"] for r in skipped],
        actor=actor,
    )
    released.done[task_id] += 1 + len(skipped) + len(settled.completed)
    _add_done(conn, released.done, now)
    decided = finalize(conn, [task_id], history, now, actor=actor)
    if task["status"] == "error" and task_id not in decided and released.ready:
        set_task_status(
            conn, history, task_id, "error", "in_progress", now, actor=actor, reason=reason
        )
    history.flush(conn, now)
