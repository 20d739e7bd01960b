"""Finalization: the transaction that records the last outcome decides the task's fate.

Callers hold the task rows locked (``lock_tasks``), so concurrent completions of one
task are serialised and exactly one of them sees the final picture.
"""

from __future__ import annotations

from datetime import datetime

from tasker.engine.history import Change, Event, HistoryWriter, task_event
from tasker.store.database import Connection

ACTIVE_TASK_STATES = ("pending", "in_progress")


def finalize_tasks(
    conn: Connection,
    task_ids: list[int],
    history: HistoryWriter,
    now: datetime,
    *,
    actor: str | None = None,
) -> dict[int, str]:
    """Close tasks that are done: ``complete`` when every step is complete or resolved,
    ``error`` when a step failed for good and nothing else can run. Returns the changes."""
    if not task_ids:
        return {}
    tasks = conn.fetch_all("get_tasks", task_ids=sorted(task_ids))
    decided: dict[int, str] = {}
    undecided = []
    for task in tasks:
        if task["status"] not in (*ACTIVE_TASK_STATES, "error"):
            continue
        if task["done_steps"] >= task["total_steps"]:
            decided[task["id"]] = "resolved_manually" if task["status"] == "error" else "complete"
        elif task["status"] != "error":
            undecided.append(task["id"])
    if undecided:
        for row in conn.fetch_all("task_blockers", task_ids=undecided):
            if row["live_steps"] == 0 and row["failed_steps"] > 0:
                decided[row["task_id"]] = "error"
    by_id = {task["id"]: task for task in tasks}
    for task_id, to_state in sorted(decided.items()):
        task = by_id[task_id]
        if task["status"] == "pending" and to_state == "complete":
            # Every step was resolved by hand before any ran: the task still starts first.
            set_task_status(conn, history, task_id, "pending", "in_progress", now, actor=actor)
            task = {**task, "status": "in_progress"}
        set_task_status(
            conn,
            history,
            task_id,
            task["status"],
            to_state,
            now,
            actor=actor,
            payload={
                "namespace": task["namespace"],
                "name": task["name"],
                "version": task["version"],
                "duration_seconds": round((now - task["created_at"]).total_seconds(), 6),
            },
        )
        history.event(Event("workflow.task_finalized", task_id, {"status": to_state}))
    return decided


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
    row = conn.fetch_one(
        "set_task_status", task_id=task_id, from_state=from_state, to_state=to_state, now=now
    )
    assert row is not None, f"task {task_id} left {from_state!r} under our lock"
    history.change(
        Change(
            task_id,
            from_state,
            to_state,
            row["transition_count"],
            task_event(from_state, to_state),
            actor=actor,
            reason=reason,
            payload=dict(payload or {}),
        )
    )
