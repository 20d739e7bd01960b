"""Steps that wait for a signal (``wait_for``) once their parents are done.

A step whose signal already came is claimable when it has a handler, and otherwise
complete with the signal's payload as its results; the others wait, until their
deadline when they have a timeout.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tasker.engine.history import Change, HistoryWriter, step_event
from tasker.store.database import Connection, Json, Row


def begin_waits(
    conn: Connection,
    history: HistoryWriter,
    steps: list[Row],
    now: datetime,
    *,
    actor: str | None = None,
) -> tuple[list[Row], list[Row]]:
    """Steps with ``wait_for`` whose parents are done: those whose signal came are
    completed by it (no handler) or made claimable (handler); the others wait, until
    their deadline when they have a timeout. Returns (completed, claimable) rows."""
    if not steps:
        return [], []
    payloads = {
        row["step_id"]: row["payload"]
        for row in conn.fetch_all("step_signals", step_ids=[s["id"] for s in steps])
    }
    signalled = [s for s in steps if s["id"] in payloads]
    deadlines = [
        {"id": s["id"], "deadline": now + timedelta(seconds=s["wait_timeout_seconds"])}
        for s in steps
        if s["id"] not in payloads and s["wait_timeout_seconds"] is not None
    ]
    if deadlines:
        conn.execute("start_waits", rows=Json(deadlines), now=now)
    claimable = [s for s in signalled if s["handler"]]
    if claimable:
        conn.execute("release_waits", step_ids=[s["id"] for s in claimable], now=now)
    completed = complete_with_signals(
        conn, history, [(s, payloads[s["id"]]) for s in signalled if not s["handler"]], now, actor
    )
    return completed, claimable


def complete_with_signals(
    conn: Connection,
    history: HistoryWriter,
    steps: list[tuple[Row, Any]],
    now: datetime,
    actor: str | None,
) -> list[Row]:
    """Handler-less waiting steps complete with their signal's payload as results."""
    if not steps:
        return []
    rows = [
        {
            "id": step["id"],
            "status": "complete",
            "results": payload,
            "error": None,
            "retryable": step["retryable"],
            "next_retry_at": None,
        }
        for step, payload in steps
    ]
    completed = conn.fetch_all("finish_steps", rows=Json(rows), now=now)
    for row in completed:
        history.change(
            Change(
                row["task_id"],
                "pending",
                "complete",
                row["transition_count"],
                step_event("complete"),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason="signal received",
                payload={"attempt": row["attempts"], "max_attempts": row["max_attempts"]},
            )
        )
    return completed
