"""Child workflows, the end: a child task that reaches a final state settles the step
that started it, in the same transaction.

A child that is ``complete`` (or ``resolved_manually``) completes the step with
``{sink step name: results}`` of the child, which releases the step's children as any
completion does; a child that failed or was cancelled fails the step for good
(``ChildTaskFailed``). Either may finish the parent task too, and so on up: a
grandparent's step is settled in the same loop. ``finalize`` is ``finalize_tasks``
followed by this; every transaction that may finish a task calls it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Set
from datetime import datetime
from typing import Any

from tasker.engine.children import fail_for_good
from tasker.engine.finalization import finalize_tasks
from tasker.engine.history import Change, HistoryWriter, step_event
from tasker.engine.maps import settle_groups
from tasker.engine.release import release_children
from tasker.store.database import Connection, Json, Row

DONE = ("complete", "resolved_manually")


def finalize(
    conn: Connection,
    task_ids: list[int],
    history: HistoryWriter,
    now: datetime,
    *,
    actor: str | None = None,
    tasks: list[Row] | None = None,
    live: Set[int] = frozenset(),
) -> dict[int, str]:
    """``finalize_tasks``, then the parents of the child tasks it finished are settled.
    Returns what ``finalize_tasks`` decided for ``task_ids``."""
    decided = finalize_tasks(conn, task_ids, history, now, actor=actor, tasks=tasks, live=live)
    settle_parents(conn, history, decided, now, actor=actor)
    return decided


def settle_parents(
    conn: Connection,
    history: HistoryWriter,
    finished: dict[int, str],
    now: datetime,
    *,
    actor: str | None = None,
) -> None:
    """Settle the steps waiting for the ``finished`` tasks (task id -> final status),
    then the steps waiting for the parents that this finished, up to the top."""
    while finished:
        links = conn.fetch_all("parent_links", task_ids=sorted(finished))
        if not links:
            return
        parent_ids = sorted({link["parent_task_id"] for link in links})
        tasks = {t["id"]: t for t in conn.fetch_all("lock_tasks", task_ids=parent_ids)}
        steps = conn.fetch_all("parent_steps_of", task_ids=[link["id"] for link in links])
        if not steps:
            return
        done = [s for s in steps if finished[s["child_task_id"]] in DONE]
        completed = _complete(conn, history, done, now, actor)
        failed = fail_for_good(
            conn,
            history,
            [
                (s, _failure(s["child_task_id"], finished[s["child_task_id"]]))
                for s in steps
                if finished[s["child_task_id"]] not in DONE
            ],
            tasks,
            now,
            actor,
            reason="child task failed",
        )
        groups = {r["group_id"] for r in [*completed, *failed] if r["group_id"] is not None}
        settled = settle_groups(conn, history, groups, now, actor)
        released = release_children(
            conn, [r["id"] for r in [*completed, *settled.completed]], history, now, actor=actor
        )
        counts: Counter[int] = Counter(r["task_id"] for r in [*completed, *settled.completed])
        counts.update(released.done)
        if counts:
            conn.execute(
                "add_done_steps",
                rows=Json([{"task_id": t, "n": n} for t, n in counts.items()]),
                now=now,
            )
        finished = finalize_tasks(conn, parent_ids, history, now, actor=actor)


def _complete(
    conn: Connection, history: HistoryWriter, steps: list[Row], now: datetime, actor: str | None
) -> list[Row]:
    """Steps whose child completed take its sinks' results."""
    if not steps:
        return []
    sinks: dict[int, dict[str, Any]] = defaultdict(dict)
    children = sorted(s["child_task_id"] for s in steps)
    for row in conn.fetch_all("child_sink_results", task_ids=children):
        sinks[row["task_id"]][row["name"]] = row["results"]
    rows = [
        {
            "id": s["id"],
            "status": "complete",
            "results": sinks[s["child_task_id"]],
            "error": None,
            "retryable": s["retryable"],
            "next_retry_at": None,
        }
        for s in steps
    ]
    changed = conn.fetch_all("finish_steps", rows=Json(rows), now=now)
    for row in changed:
        history.change(
            Change(
                row["task_id"],
                "in_progress",
                "complete",
                row["transition_count"],
                step_event("complete"),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason="child task complete",
                payload={"attempt": row["attempts"], "max_attempts": row["max_attempts"]},
            )
        )
    return changed


def _failure(child_task_id: int, status: str) -> dict[str, Any]:
    ended = "was cancelled" if status == "cancelled" else "failed"
    return {
        "class": "ChildTaskFailed",
        "message": f"child task {child_task_id} {ended} (tasker task show {child_task_id})",
        "traceback": None,
    }
