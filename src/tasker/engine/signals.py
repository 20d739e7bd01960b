"""Signals: the outside world releasing a step that waits (``wait_for``).

A signal is kept per task and name, whenever it comes: before its step waits (it is
used when the step does), while it waits (the step goes on at once), or after. Sending
the same signal again with the same payload changes nothing; with another payload it is
a conflict. A wait with a ``timeout_seconds`` that passes without its signal fails the
step for good (``SignalTimeout``), found by the reaper that also returns expired leases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasker.engine.history import Change, Event, HistoryWriter, step_event
from tasker.engine.parents import finalize
from tasker.engine.release import release_children
from tasker.engine.waits import begin_waits
from tasker.exceptions import InvalidTransition, NotFound, SignalConflict
from tasker.payloads import check_storable
from tasker.serialization import iso
from tasker.states import FINAL
from tasker.store.database import Connection, Json, Row


@dataclass(frozen=True)
class SignalReceipt:
    """What sending a signal did. ``created`` False: the same signal had come before."""

    task_id: int
    name: str
    step: str
    created: bool
    received_at: datetime
    released: bool  # the waiting step went on (claimable, or complete with the payload)


def deliver_signal(
    conn: Connection,
    task_id: int,
    name: str,
    payload: Any,
    now: datetime,
    *,
    actor: str | None = None,
) -> SignalReceipt:
    """Keep the signal and release the step waiting for it, in one transaction."""
    check_storable(payload, "signal payload")
    tasks = conn.fetch_all("lock_tasks", task_ids=[task_id])
    if not tasks:
        raise NotFound(f"task {task_id} does not exist")
    task = tasks[0]
    step = conn.fetch_one("signal_step", task_id=task_id, name=name)
    if step is None:
        known = [row["name"] for row in conn.fetch_all("signal_names", task_id=task_id)]
        choices = ", ".join(known) if known else "none"
        raise NotFound(
            f"task {task_id} has no step waiting for signal {name!r}; signals: {choices}"
        )
    existing = conn.fetch_one("get_signal", task_id=task_id, name=name)
    if existing is not None:
        if _same(existing["payload"], payload):
            return SignalReceipt(task_id, name, step["name"], False, existing["created_at"], False)
        raise SignalConflict(task_id, name)
    if task["status"] in FINAL:
        raise InvalidTransition(
            f"task {task_id}",
            task["status"],
            "in_progress",
            f"task {task_id} is {task['status']!r}: it takes no more signals",
        )
    conn.fetch_one(
        "insert_signal",
        task_id=task_id,
        name=name,
        payload=Json(payload),
        actor=actor,
        now=now,
    )
    history = HistoryWriter()
    history.event(
        Event(
            "step.signal_received",
            task_id,
            {
                "signal": name,
                "payload_size": len(json.dumps(payload)),
                "step_status": step["status"],
                **({"actor": actor} if actor else {}),
            },
            step["id"],
            step["name"],
        )
    )
    released = False
    if step["status"] == "pending" and step["remaining_parents"] == 0:
        completed, claimable = begin_waits(conn, history, [step], now, actor=actor)
        released = bool(completed or claimable)
        if claimable:
            conn.execute("notify_steps_ready")
        if completed:
            more = release_children(conn, [step["id"]], history, now, actor=actor)
            more.done[task_id] += 1
            rows = [{"task_id": t, "n": n} for t, n in more.done.items() if n]
            conn.execute("add_done_steps", rows=Json(rows), now=now)
            finalize(conn, [task_id], history, now, actor=actor)
    history.flush(conn, now)
    return SignalReceipt(task_id, name, step["name"], True, now, released)


def _same(stored: Any, payload: Any) -> bool:
    """Stored JSON and a new payload compare as JSON values (key order aside)."""
    return json.dumps(stored, sort_keys=True) == json.dumps(payload, sort_keys=True)


def fail_expired_waits(
    conn: Connection, now: datetime, *, limit: int = 100, actor: str = "reaper"
) -> dict[int, str]:
    """Waits whose timeout passed without their signal fail for good; their tasks are
    finalized. Returns the tasks that reached a final state."""
    expired = conn.fetch_all("expired_waits", now=now, limit=limit)
    if not expired:
        return {}
    task_ids = sorted({row["task_id"] for row in expired})
    tasks = {t["id"]: t for t in conn.fetch_all("lock_tasks", task_ids=task_ids)}
    rows = [
        {
            "id": row["id"],
            "error": {
                "class": "SignalTimeout",
                "message": f"no signal {row['wait_for']!r} came within "
                f"{row['wait_timeout_seconds']:g} seconds",
                "traceback": None,
            },
        }
        for row in expired
    ]
    by_id = {row["id"]: row for row in expired}
    history = HistoryWriter()
    for row in conn.fetch_all("fail_expired_waits", rows=Json(rows), now=now):
        task = tasks[row["task_id"]]
        history.change(
            Change(
                row["task_id"],
                "pending",
                "error",
                row["transition_count"],
                step_event("error"),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason="signal timeout",
                payload=_timeout_payload(row, by_id[row["id"]], task),
            )
        )
    decided = finalize(conn, task_ids, history, now, actor=actor)
    history.flush(conn, now)
    return decided


def _timeout_payload(row: Row, expired: Row, task: Row) -> dict[str, Any]:
    return {
        "attempt": row["attempts"],
        "max_attempts": row["max_attempts"],
        "duration_seconds": expired["wait_timeout_seconds"],
        "error_class": "SignalTimeout",
        "error_message": f"no signal {expired['wait_for']!r} came in time",
        "next_retry_at": iso(None),
        "namespace": task["namespace"],
        "name": task["name"],
        "version": task["version"],
    }
