"""Cron schedules: storing them, firing their ticks exactly once, pausing them.

Templates declare schedules; ``sync_schedules`` stores them (keeping a stored schedule's
progress and pause while its cron and zone stay the same). Running workers call
``fire_due_schedules`` every second or so. The firing transaction is the lease: it takes
a lock only one transaction holds at a time (PostgreSQL: an advisory transaction lock,
plus the due rows ``FOR UPDATE SKIP LOCKED``; SQLite: the write transaction itself),
creates one task per due tick with the idempotency key ``schedule:NS/NAME:SCHEDULE:TICK``
and moves the schedule on, all in that one transaction. A worker killed mid-tick loses
the lock with its connection and its transaction rolls back: the next worker fires the
tick, and the idempotency key makes a second task for one tick impossible anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasker.definitions import TemplateDefinition
from tasker.definitions.schedule import ScheduleSpec, due_ticks, next_tick
from tasker.engine import children, creation
from tasker.engine.history import Event, HistoryWriter
from tasker.exceptions import IdempotencyConflict, NotFound
from tasker.serialization import iso
from tasker.store.database import Connection, Json, Row

DUE_BATCH = 20  # schedules fired per transaction, at most


@dataclass(frozen=True)
class Fired:
    """A tick that fired: the schedule's key, the tick, and the task it made."""

    key: str  # NS/NAME:SCHEDULE
    tick: datetime
    task_id: int


def schedule_key(namespace: str, template: str, schedule: str) -> str:
    return f"{namespace}/{template}:{schedule}"


def tick_key(namespace: str, template: str, schedule: str, tick: datetime) -> str:
    """The idempotency key of the task a tick creates."""
    return f"schedule:{schedule_key(namespace, template, schedule)}:{iso(tick)}"


def declared(templates: Iterable[TemplateDefinition]) -> dict[tuple[str, str], TemplateDefinition]:
    """The highest version of each template name that declares schedules, by (ns, name)."""
    found: dict[tuple[str, str], TemplateDefinition] = {}
    for template in templates:
        key = (template.namespace, template.name)
        best = found.get(key)
        if best is None or template.version_tuple() > best.version_tuple():
            found[key] = template
    return {key: t for key, t in found.items() if t.schedules}


def sync_schedules(
    conn: Connection, templates: dict[tuple[str, str], TemplateDefinition], now: datetime
) -> int:
    """Store the schedules the templates declare; returns how many."""
    rows = [
        {
            "namespace": t.namespace,
            "template_name": t.name,
            "name": s.name,
            "cron": s.cron,
            "timezone": s.timezone,
            "catchup": s.catchup,
            "context": s.context,
            "next_tick_at": iso(next_tick(s, now)),
        }
        for t in templates.values()
        for s in t.schedules
    ]
    if rows:
        conn.execute("upsert_schedules", rows=Json(rows), now=now)
    return len(rows)


def fire_due_schedules(
    conn: Connection,
    templates: dict[tuple[str, str], TemplateDefinition],
    now: datetime,
    *,
    max_steps: int,
) -> list[Fired]:
    """Fire every due tick of the schedules these templates declare (see the module)."""
    lock = conn.fetch_one("try_schedule_lock")
    if lock is None or not lock["acquired"]:
        return []  # another worker is firing right now
    fired: list[Fired] = []
    history = HistoryWriter()
    for row in conn.fetch_all("lock_due_schedules", now=now, limit=DUE_BATCH):
        template = templates.get((row["namespace"], row["template_name"]))
        spec = _spec(template, row["name"]) if template is not None else None
        if template is None or spec is None:
            continue  # a worker that loads this template fires it
        latest: Fired | None = None
        for tick in due_ticks(spec, row["last_tick_at"], now):
            task_id = _create(conn, template, spec, tick, now, max_steps)
            latest = Fired(
                schedule_key(template.namespace, template.name, spec.name), tick, task_id
            )
            fired.append(latest)
            history.event(
                Event(
                    "schedule.fired",
                    task_id,
                    {
                        "namespace": template.namespace,
                        "name": template.name,
                        "schedule": spec.name,
                        "tick": iso(tick),
                    },
                )
            )
        conn.execute(
            "advance_schedule",
            id=row["id"],
            last_tick_at=now,
            next_tick_at=next_tick(spec, now),
            fired_tick=latest.tick if latest else None,
            task_id=latest.task_id if latest else None,
            now=now,
        )
    history.flush(conn, now)
    return fired


def _spec(template: TemplateDefinition, name: str) -> ScheduleSpec | None:
    return next((s for s in template.schedules if s.name == name), None)


def _create(
    conn: Connection,
    template: TemplateDefinition,
    spec: ScheduleSpec,
    tick: datetime,
    now: datetime,
    max_steps: int,
) -> int:
    """The task of one tick: the existing one if it was already made. The context was
    checked against the template when the template was loaded."""
    request = creation.TaskRequest(
        name=template.name,
        namespace=template.namespace,
        version=template.version,
        context=spec.context,
        idempotency_key=tick_key(template.namespace, template.name, spec.name, tick),
        initiator="schedule",
        reason=f"schedule {spec.name}: tick {iso(tick)}",
    )
    creation.check_request(template, request)
    try:
        existing = creation.find_idempotent(conn, template, request)
    except IdempotencyConflict as taken:  # someone else made a task with this tick's key
        return taken.task_id
    if existing is not None:
        return existing
    # through children.create_task, so a root step that runs a child workflow starts it
    return children.create_task(conn, template, request, now, actor="schedule", max_steps=max_steps)


def set_paused(
    conn: Connection,
    namespace: str,
    template_name: str,
    name: str,
    *,
    paused: bool,
    now: datetime,
    actor: str | None,
    reason: str | None,
) -> Row:
    """Pause or resume a stored schedule, with its history row and event. Resuming does
    not catch up on the ticks that passed while it was paused: it starts from now."""
    row = conn.fetch_one(
        "lock_schedule", namespace=namespace, template_name=template_name, name=name
    )
    if row is None:
        raise NotFound(
            f"schedule {schedule_key(namespace, template_name, name)} does not exist "
            "(schedules are stored when a worker or `tasker schedule list` loads their template)"
        )
    if bool(row["paused"]) == paused:
        return row  # pausing a paused schedule changes nothing (no history, no event)
    cron_spec = ScheduleSpec(name, row["cron"], row["timezone"])
    updated = conn.fetch_one(
        "set_schedule_paused",
        id=row["id"],
        paused=paused,
        actor=actor,
        reason=reason,
        last_tick_at=now,
        next_tick_at=next_tick(cron_spec, now),
        now=now,
    )
    assert updated is not None
    states = ("active", "paused") if paused else ("paused", "active")
    conn.execute(
        "insert_schedule_transition",
        schedule_id=row["id"],
        from_state=states[0],
        to_state=states[1],
        reason=reason,
        actor=actor,
        now=now,
    )
    payload: dict[str, Any] = {"namespace": namespace, "name": template_name, "schedule": name}
    if reason is not None:
        payload["reason"] = reason
    if actor is not None:
        payload["actor"] = actor
    history = HistoryWriter()
    history.event(Event("schedule.paused" if paused else "schedule.resumed", None, payload))
    history.flush(conn, now)
    return updated


def schedule_json(row: Row) -> dict[str, Any]:
    """A stored schedule as JSON (``tasker schedule list --json``, ``GET /v1/schedules``)."""
    return {
        "namespace": row["namespace"],
        "template": row["template_name"],
        "name": row["name"],
        "cron": row["cron"],
        "timezone": row["timezone"],
        "catchup": row["catchup"],
        "context": row["context"],
        "paused": bool(row["paused"]),
        "paused_at": iso(row["paused_at"]),
        "paused_by": row["paused_by"],
        "pause_reason": row["pause_reason"],
        "next_fire_at": None if row["paused"] else iso(row["next_tick_at"]),
        "last_fired_at": iso(row["last_fired_at"]),
        "last_tick": iso(row["last_fired_tick_at"]),
        "last_task_id": row["last_task_id"],
    }
