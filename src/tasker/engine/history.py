"""Writing state changes: the history row and the event of each change, in bulk.

Callers change the denormalised ``status`` (which also bumps the entity's
``transition_count``, the history sort key) and hand the changes here, inside the
same transaction, so a state, its history row and its event commit together.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasker.store.database import Connection, Json


@dataclass(frozen=True)
class Change:
    """One state change of a task (``step_id`` None) or a step."""

    task_id: int
    from_state: str | None
    to_state: str
    sort_key: int
    event: str | None  # the event it publishes; None for the initial transition
    step_id: int | None = None
    step_name: str | None = None
    reason: str | None = None
    actor: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """An event with no state change of its own (workflow.* and custom events)."""

    name: str
    task_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)
    step_id: int | None = None
    step_name: str | None = None


class HistoryWriter:
    """Collects the changes and events of one transaction and writes them in order."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.events: list[Event | Change] = []
        self._wake_workers = False

    def change(self, change: Change) -> None:
        self.changes.append(change)
        if change.event is not None:
            self.events.append(change)

    def event(self, event: Event) -> None:
        self.events.append(event)

    def notify_steps_ready(self) -> None:
        """Wake the workers once this transaction commits: steps became claimable. Sent
        with the history rows at ``flush`` (one round trip for all of it)."""
        self._wake_workers = True

    def flush(self, conn: Connection, now: datetime) -> None:
        """Write everything collected. Call it last in the transaction: on PostgreSQL the
        event insert holds the event-id counter until commit (ids in commit order).

        Nothing here is read back, so the statements go in one pipeline: a step's record
        waits for one reply instead of one per statement."""
        task_rows = [_transition_row(c) for c in self.changes if c.step_id is None]
        step_rows = [_transition_row(c) for c in self.changes if c.step_id is not None]
        event_rows = [_event_row(seq, e) for seq, e in enumerate(self.events)]
        statements = bool(task_rows) + bool(step_rows) + bool(event_rows) + self._wake_workers
        with conn.pipeline() if statements > 1 else nullcontext():
            if task_rows:
                conn.execute("insert_task_transitions", rows=Json(task_rows), now=now)
            if step_rows:
                conn.execute("insert_step_transitions", rows=Json(step_rows), now=now)
            if event_rows:
                conn.execute("insert_events", rows=Json(event_rows), count=len(event_rows), now=now)
            if self._wake_workers:
                conn.execute("notify_steps_ready")
        self.changes.clear()
        self.events.clear()
        self._wake_workers = False


# Payload keys worth keeping in the history row itself (the rest live in the event).
METADATA_KEYS = (
    "attempt",
    "worker_id",
    "error_class",
    "error_message",
    "next_retry_at",
    "discarded",
)


def _transition_row(change: Change) -> dict[str, Any]:
    metadata = change.metadata or {
        key: change.payload[key] for key in METADATA_KEYS if change.payload.get(key) is not None
    }
    row: dict[str, Any] = {
        "task_id": change.task_id,
        "from_state": change.from_state,
        "to_state": change.to_state,
        "reason": change.reason,
        "metadata": metadata,
        "actor": change.actor,
        "sort_key": change.sort_key,
    }
    if change.step_id is not None:
        row["step_id"] = change.step_id
    return row


def _event_row(seq: int, item: Event | Change) -> dict[str, Any]:
    name = item.name if isinstance(item, Event) else item.event
    payload = dict(item.payload)
    if isinstance(item, Change):
        payload.setdefault("from_state", item.from_state)
        payload.setdefault("to_state", item.to_state)
        if item.reason:
            payload.setdefault("reason", item.reason)
        if item.actor:
            payload.setdefault("actor", item.actor)
    return {
        "seq": seq,
        "name": name,
        "task_id": item.task_id,
        "step_id": item.step_id,
        "step_name": item.step_name,
        "payload": payload,
    }


# Event published by each step state change (a failure publishes retry_scheduled when
# another attempt will follow, failed otherwise).
STEP_EVENTS = {
    "in_progress": "step.started",
    "complete": "step.completed",
    "cancelled": "step.cancelled",
    "resolved_manually": "step.resolved_manually",
    "pending": "step.retry_requested",
    "skipped": "step.skipped",
}

TASK_EVENTS = {
    "complete": "task.completed",
    "error": "task.failed",
    "cancelled": "task.cancelled",
    "resolved_manually": "task.resolved_manually",
}


def task_event(from_state: str, to_state: str) -> str:
    if to_state == "in_progress":
        return "task.retry_requested" if from_state == "error" else "task.started"
    return TASK_EVENTS[to_state]


def step_event(to_state: str, *, will_retry: bool = False) -> str:
    if to_state == "error":
        return "step.retry_scheduled" if will_retry else "step.failed"
    return STEP_EVENTS[to_state]
