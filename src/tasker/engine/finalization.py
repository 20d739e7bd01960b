"""Finalization: the transaction that records the last outcome decides the task's fate.

Callers hold the task rows locked (``lock_tasks``), so concurrent completions of one
task are serialised and exactly one of them sees the final picture.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime

from tasker.engine.history import Change, Event, HistoryWriter, task_event
from tasker.store.database import Connection, Json, Row

ACTIVE_TASK_STATES = ("pending", "in_progress")


def finalize_tasks(
    conn: Connection,
    task_ids: list[int],
    history: HistoryWriter,
    now: datetime,
    *,
    actor: str | None = None,
    tasks: list[Row] | None = None,
    live: Set[int] = frozenset(),
) -> dict[int, str]:
    """Close tasks that are done: ``complete`` when every step is complete or resolved,
    ``error`` when a step failed for good and nothing else can run. Returns the changes.

    ``tasks`` may pass the current rows (status, done_steps, total_steps...) when the
    caller already has them, saving a read; ``live`` the tasks the caller knows have a
    step that can still run (it just made one claimable), which cannot fail now, so
    nothing is read to know what blocks them."""
    if not task_ids:
        return {}
    if tasks is None:
        tasks = conn.fetch_all("get_tasks", task_ids=sorted(task_ids))
    # Only an open task with steps left can fail: look at what blocks those alone.
    undecided = [
        task["id"]
        for task in tasks
        if task["status"] in ACTIVE_TASK_STATES
        and task["done_steps"] < task["total_steps"]
        and task["id"] not in live
    ]
    blockers = {
        row["task_id"]: row
        for row in (conn.fetch_all("task_blockers", task_ids=undecided) if undecided else [])
    }
    decided: dict[int, str] = {}
    for task in tasks:
        blocked = blockers.get(task["id"], {})
        to_state = final_state(
            task["status"],
            total_steps=task["total_steps"],
            done_steps=task["done_steps"],
            live_steps=1 if task["id"] in live else int(bool(blocked.get("any_live"))),
            failed_steps=int(bool(blocked.get("any_failed"))),
        )
        if to_state is not None:
            decided[task["id"]] = to_state
    by_id = {task["id"]: task for task in tasks}
    changes: list[TaskStatusChange] = []
    for task_id, to_state in sorted(decided.items()):
        task = by_id[task_id]
        payload = {
            "namespace": task["namespace"],
            "name": task["name"],
            "version": task["version"],
            "duration_seconds": round((now - task["created_at"]).total_seconds(), 6),
        }
        if task["status"] == "pending" and to_state == "complete":
            # Every step was resolved by hand before any ran: the task still starts first.
            set_task_status(conn, history, task_id, "pending", "in_progress", now, actor=actor)
            task = {**task, "status": "in_progress"}
        changes.append(TaskStatusChange(task_id, task["status"], to_state, payload))
    set_tasks_status(conn, history, changes, now, actor=actor)
    for change in changes:
        history.event(Event("workflow.task_finalized", change.task_id, {"status": change.to_state}))
    return decided


def final_state(
    status: str, *, total_steps: int, done_steps: int, live_steps: int, failed_steps: int
) -> str | None:
    """The state a task moves to, given its steps, or None while it stays as it is.

    ``done_steps`` are complete or resolved_manually; ``live_steps`` running or
    claimable (now, or after their backoff); ``failed_steps`` failed for good.
    Every step done: ``complete``, or ``resolved_manually`` for a failed task whose last
    open steps were resolved by hand. Nothing can run and a step failed for good:
    ``error``. A task already ``complete``, ``cancelled`` or ``resolved_manually``
    never moves; a failed one moves only when its steps are all done.
    """
    if status not in (*ACTIVE_TASK_STATES, "error"):
        return None
    if done_steps >= total_steps:
        return "resolved_manually" if status == "error" else "complete"
    if status != "error" and live_steps == 0 and failed_steps > 0:
        return "error"
    return None


@dataclass(frozen=True)
class TaskStatusChange:
    task_id: int
    from_state: str
    to_state: str
    payload: dict[str, object] = field(default_factory=dict)


def set_tasks_status(
    conn: Connection,
    history: HistoryWriter,
    changes: list[TaskStatusChange],
    now: datetime,
    *,
    actor: str | None = None,
    reason: str | None = None,
) -> None:
    """Change several tasks' status in one statement, with their history and events."""
    if not changes:
        return
    rows = [
        {"task_id": c.task_id, "from_state": c.from_state, "to_state": c.to_state} for c in changes
    ]
    sort_keys = {
        r["id"]: r["transition_count"]
        for r in conn.fetch_all("set_task_status", rows=Json(rows), now=now)
    }
    for change in changes:
        assert change.task_id in sort_keys, (
            f"task {change.task_id} left {change.from_state!r} under our lock"
        )
        history.change(
            Change(
                change.task_id,
                change.from_state,
                change.to_state,
                sort_keys[change.task_id],
                task_event(change.from_state, change.to_state),
                actor=actor,
                reason=reason,
                payload=dict(change.payload),
            )
        )


def set_task_status(
    conn: Connection,
    history: HistoryWriter,
    task_id: int,
    from_state: str,
    to_state: str,
    now: datetime,
    *,
    actor: str | None = None,
    reason: str | None = None,
    payload: dict[str, object] | None = None,
) -> None:
    set_tasks_status(
        conn,
        history,
        [TaskStatusChange(task_id, from_state, to_state, dict(payload or {}))],
        now,
        actor=actor,
        reason=reason,
    )
