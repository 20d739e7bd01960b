"""Creating a task: one transaction writes the task, its steps, edges, initial history."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tasker.definitions import TemplateDefinition, flow
from tasker.definitions.template import StepSpec, check_priority
from tasker.engine.history import Change, Event, HistoryWriter
from tasker.engine.maps import DEFAULT_MAX_TASK_STEPS
from tasker.engine.waits import begin_waits
from tasker.exceptions import IdempotencyConflict, ValidationError
from tasker.payloads import check_storable, check_text
from tasker.serialization import iso
from tasker.store.database import Connection, Json, Row

MAX_DELAY_SECONDS = 100 * 365 * 86400.0  # the longest delay_seconds accepted: 100 years


@dataclass(frozen=True)
class TaskRequest:
    """What a caller asks for. ``version`` None means the highest registered version.

    ``run_at`` (a time; one without a zone is taken as UTC) or ``delay_seconds`` (from the
    moment of creation), never both: no step starts before then. ``priority`` overrides the
    template's (higher first; None keeps the template's)."""

    name: str
    context: dict[str, Any] = field(default_factory=dict)
    namespace: str = "default"
    version: str | None = None
    idempotency_key: str | None = None
    initiator: str | None = None
    source_system: str | None = None
    reason: str | None = None
    tags: tuple[str, ...] = ()
    trace_context: dict[str, str] | None = None
    run_at: datetime | None = None
    delay_seconds: float | None = None
    priority: int | None = None


def request_hash(template: TemplateDefinition, context: dict[str, Any]) -> str:
    """What makes two requests "the same" for idempotency: the template and the context."""
    canonical = json.dumps(
        {"template": template.key, "context": context}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_request(template: TemplateDefinition, request: TaskRequest) -> None:
    """Validate everything before writing anything; every problem is listed."""
    check_storable(request.context, "context")
    for field_name in ("idempotency_key", "initiator", "source_system", "reason"):
        if (text := getattr(request, field_name)) is not None:
            check_text(text, field_name)
    template.validate_context(request.context)
    if request.idempotency_key is not None and not request.idempotency_key.strip():
        raise ValidationError("idempotency_key must not be blank")
    bad_tags = [t for t in request.tags if not isinstance(t, str)]
    if bad_tags:
        raise ValidationError("tags must be strings", errors=[repr(t) for t in bad_tags])
    for tag in request.tags:
        check_text(tag, f"tag {tag!r}")
    if request.run_at is not None and request.delay_seconds is not None:
        raise ValidationError("give run_at or delay_seconds, not both")
    if request.run_at is not None and not isinstance(request.run_at, datetime):
        raise ValidationError(f"run_at must be a time, got {request.run_at!r}")
    delay = request.delay_seconds
    if delay is not None and (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not math.isfinite(delay)
        or not 0 <= delay <= MAX_DELAY_SECONDS
    ):
        raise ValidationError(
            f"delay_seconds must be a number of seconds from 0 to {MAX_DELAY_SECONDS:.0f} "
            f"(100 years), got {delay!r}"
        )
    if request.priority is not None:
        try:
            check_priority(request.priority)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    if template.concurrency is not None and not (
        isinstance(request.context, dict) and template.concurrency.key in request.context
    ):
        field_name = template.concurrency.key
        raise ValidationError(
            f"template {template.key} limits concurrency per context field {field_name!r}, "
            f"and the context has no {field_name!r}"
        )


def start_time(request: TaskRequest, now: datetime) -> datetime | None:
    """When the requested task may start: its run_at (UTC; a naive time is UTC), now plus
    its delay, or None for at once. The request was checked."""
    if request.run_at is not None:
        run_at = request.run_at
        return run_at.astimezone(UTC) if run_at.tzinfo else run_at.replace(tzinfo=UTC)
    if request.delay_seconds is not None:
        return now + timedelta(seconds=request.delay_seconds)
    return None


def find_idempotent(
    conn: Connection, template: TemplateDefinition, request: TaskRequest
) -> int | None:
    """The id of the task this request already created, or None. Raises on a conflict."""
    if request.idempotency_key is None:
        return None
    row = conn.fetch_one("get_task_by_idempotency_key", key=request.idempotency_key)
    if row is None:
        return None
    if row["request_hash"] != request_hash(template, request.context):
        raise IdempotencyConflict(request.idempotency_key, row["id"])
    task_id: int = row["id"]
    return task_id


def register_template(conn: Connection, template: TemplateDefinition, now: datetime) -> int:
    namespace = conn.fetch_one("upsert_namespace", name=template.namespace, now=now)
    assert namespace is not None
    row = conn.fetch_one(
        "upsert_template",
        namespace_id=namespace["id"],
        name=template.name,
        version=template.version,
        description=template.description,
        definition=Json(template.to_dict()),
        now=now,
    )
    assert row is not None
    template_id: int = row["id"]
    return template_id


def insert_task(
    conn: Connection,
    template: TemplateDefinition,
    request: TaskRequest,
    now: datetime,
    actor: str | None = None,
    template_id: int | None = None,
    max_steps: int = DEFAULT_MAX_TASK_STEPS,
    *,
    parent: tuple[int, int] | None = None,
    workflows: dict[str, dict[str, Any]] | None = None,
) -> tuple[int, list[Row]]:
    """Write a new task with all its steps and edges. The caller checked the request.
    ``template_id``: the stored template's id when the caller knows it is current
    (registering takes the template row's lock, which would serialise creators).
    ``parent``: (task id, step id) when it is a child task; ``workflows``: step name ->
    the pinned reference of each step with ``workflow``. Returns the task's id and its
    root steps (``engine/children.py`` starts those that run a child without a handler)."""
    if len(template.steps) > max_steps:
        raise ValidationError(
            f"template {template.key} has {len(template.steps)} steps, more than a task may "
            f"have ({max_steps}, TASKER_MAX_TASK_STEPS)"
        )
    if template_id is None:
        template_id = register_template(conn, template, now)
    run_at = start_time(request, now)
    priority = template.priority if request.priority is None else request.priority
    row = conn.fetch_one(
        "insert_task",
        **task_row(template, request, template_id, max_steps, run_at, priority),
        request_hash=request_hash(template, request.context),
        context=Json(request.context),
        tags=Json(list(request.tags)),
        trace_context=Json(request.trace_context) if request.trace_context else None,
        parent_task_id=parent[0] if parent else None,
        parent_step_id=parent[1] if parent else None,
        now=now,
    )
    assert row is not None
    task_id: int = row["id"]
    inserted = conn.fetch_all(
        "insert_steps",
        task_id=task_id,
        namespace=template.namespace,
        rows=Json(step_rows(template, workflows or {})),
        start_at=max(now, run_at) if run_at is not None else now,
        priority=priority,
        task_key=task_key(template, request),
        task_key_limit=None if template.concurrency is None else template.concurrency.limit,
        now=now,
    )
    edges = edge_rows(template)
    if edges:
        conn.execute("insert_edges", task_id=task_id, rows=Json(edges))

    history = HistoryWriter()
    record_created(history, task_id, template, request, inserted, run_at, priority, actor, parent)
    # Roots that wait for a signal start waiting now (no signal can have come yet).
    begin_waits(
        conn,
        history,
        [s for s in inserted if s["total_parents"] == 0 and s["wait_for"] is not None],
        now,
        actor=actor,
    )
    if record_ready(history, task_id, template, inserted, run_at, now):
        history.notify_steps_ready()
    history.flush(conn, now)
    return task_id, [s for s in inserted if s["total_parents"] == 0]


def task_row(
    template: TemplateDefinition,
    request: TaskRequest,
    template_id: int,
    max_steps: int,
    run_at: datetime | None,
    priority: int,
) -> dict[str, Any]:
    """A new task's columns but its request hash (``request_hash``, which a caller may
    have already), its JSON documents (context, tags, trace_context), which each caller
    encodes as its query takes them, and its parent."""
    return {
        "template_id": template_id,
        "namespace": template.namespace,
        "name": template.name,
        "version": template.version,
        "idempotency_key": request.idempotency_key,
        "initiator": request.initiator,
        "source_system": request.source_system,
        "reason": request.reason,
        "total_steps": len(template.steps),
        "max_steps": max_steps,
        "run_at": run_at,
        "priority": priority,
    }


def task_key(template: TemplateDefinition, request: TaskRequest) -> str | None:
    """The steps' concurrency key of a task whose template limits it per context field."""
    concurrency = template.concurrency
    if concurrency is None:
        return None
    return flow.task_key(
        template.namespace, template.name, concurrency.key, request.context[concurrency.key]
    )


def step_rows(
    template: TemplateDefinition, workflows: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows ``insert_steps`` takes for a task of ``template`` (the same for every task
    of it; ``workflows``: step name -> pinned reference)."""
    return [
        {
            "name": spec.name,
            "position": position,
            "handler": spec.handler or "",  # "": a step that waits for a signal runs no code
            "config": spec.config,
            "max_attempts": spec.max_attempts,
            "retryable": spec.retryable,
            "timeout_seconds": spec.timeout_seconds,
            "backoff_base_seconds": spec.backoff.base_seconds,
            "backoff_max_seconds": spec.backoff.max_seconds,
            "backoff_jitter": spec.backoff.jitter,
            "total_parents": len(spec.depends_on),
            "join_mode": spec.join,
            "branches": list(spec.branches) or None,
            "wait_for": spec.wait_for,
            "wait_timeout_seconds": spec.timeout_seconds if spec.wait_for else None,
            "map_path": spec.map,
            "max_items": spec.max_items if spec.map else None,
            "workflow": workflows.get(spec.name, spec.workflow.to_dict())
            if spec.workflow
            else None,
            **_flow_columns(template, spec),
        }
        for position, spec in enumerate(template.steps)
    ]


def edge_rows(template: TemplateDefinition) -> list[dict[str, str]]:
    """The rows ``insert_edges`` takes: each dependency, by step name."""
    return [
        {"parent": parent, "child": spec.name}
        for spec in template.steps
        for parent in spec.depends_on
    ]


def record_created(
    history: HistoryWriter,
    task_id: int,
    template: TemplateDefinition,
    request: TaskRequest,
    steps: list[Row],
    run_at: datetime | None,
    priority: int,
    actor: str | None,
    parent: tuple[int, int] | None = None,
) -> None:
    """A new task's history: its initial transition and its steps' (``steps``: the
    inserted rows, in order), then ``workflow.task_created``."""
    history.change(Change(task_id, None, "pending", 1, None, reason=request.reason, actor=actor))
    for step in steps:
        history.change(
            Change(
                task_id,
                None,
                "pending",
                1,
                None,
                step_id=step["id"],
                step_name=step["name"],
                actor=actor,
            )
        )
    created: dict[str, Any] = {**_identity(template), "total_steps": len(steps)}
    if run_at is not None:
        created["run_at"] = iso(run_at)
    if priority:
        created["priority"] = priority
    if parent is not None:  # a child task's events link to its parent through this one
        created.update(parent_task_id=parent[0], parent_step_id=parent[1])
    history.event(Event("workflow.task_created", task_id, created))


def record_ready(
    history: HistoryWriter,
    task_id: int,
    template: TemplateDefinition,
    steps: list[Row],
    run_at: datetime | None,
    now: datetime,
) -> bool:
    """``workflow.steps_ready`` for a new task that may start now; whether it was (the
    caller then wakes the workers: a delayed task's roots are not claimable yet)."""
    if run_at is not None and run_at > now:
        return False
    ready = [s["name"] for s in steps if s["claimable_at"] is not None]
    history.event(Event("workflow.steps_ready", task_id, {**_identity(template), "steps": ready}))
    return True


def _identity(template: TemplateDefinition) -> dict[str, Any]:
    return {"namespace": template.namespace, "name": template.name, "version": template.version}


def _flow_columns(template: TemplateDefinition, spec: StepSpec) -> dict[str, Any]:
    """A step row's concurrency and rate-limit keys (None when it has no limit)."""
    limit, rate = spec.concurrency_limit, spec.rate_limit
    return {
        "concurrency_key": None
        if limit is None
        else flow.step_key(template.namespace, template.name, spec.name),
        "concurrency_limit": limit,
        "rate_key": None
        if rate is None
        else flow.rate_key(template.namespace, template.name, spec.name),
        "rate_count": None if rate is None else rate.count,
        "rate_period_seconds": None if rate is None else rate.period_seconds,
    }
