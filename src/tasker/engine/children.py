"""Child workflows, the start: a step with ``workflow`` creates a child task.

The child is created in the transaction that makes the step start: for a step without
a handler, the one that releases it (its parents are done, or it is a root, or a map
instance); for a step with a handler, the one that records the handler's outcome (the
context it returned). The step is then ``in_progress`` with ``child_task_id`` set and
no claim or lease: nothing can time it out, and no worker holds it. A unique index on
``tasks.parent_step_id`` makes a second child for the same step impossible, whatever
retries, crashes or races happen (each map instance is its own step).

The child's context is the handler's return value, else the map item, else the parent
task's context; it must be a JSON object that fits the child template's
``context_schema``, or the step fails for good (``InvalidChildContext``). A template
that is not stored fails it too (``ChildTaskNotCreated``). How the child's end settles
the step is ``engine/parents.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasker.definitions import TemplateDefinition, parse_template
from tasker.engine.creation import TaskRequest, insert_task
from tasker.engine.history import Change, Event, HistoryWriter, step_event, task_event
from tasker.engine.maps import DEFAULT_MAX_TASK_STEPS
from tasker.exceptions import ValidationError
from tasker.store.database import Connection, Json, Row

NO_CONTEXT = object()
"""A step's context to use when it has no handler: the map item or the parent's."""


@dataclass
class Started:
    """What starting children did: steps now waiting for a child, steps failed for good."""

    waiting: list[Row] = field(default_factory=list)
    failed: list[Row] = field(default_factory=list)


class StoredTemplates:
    """Templates by reference, read once per transaction from the templates table (every
    template a task may start was stored when the task was created)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._found: dict[tuple[str, str, str | None], tuple[TemplateDefinition, int] | None] = {}

    def get(self, ref: dict[str, Any]) -> tuple[TemplateDefinition, int] | None:
        """``(definition, template id)`` of ``{namespace, name, version}``; the highest
        version when it names none; None when no such template is stored."""
        key = (ref["namespace"], ref["name"], ref.get("version"))
        if key not in self._found:
            rows = self._conn.fetch_all("stored_template_versions", namespace=key[0], name=key[1])
            found = [
                (parse_template(r["definition"], source="database", validate=False), r["id"])
                for r in rows
                if key[2] is None or r["version"] == key[2]
            ]
            self._found[key] = (
                max(found, key=lambda pair: pair[0].version_tuple()) if found else None
            )
        return self._found[key]


def pinned_workflows(
    template: TemplateDefinition, stored: StoredTemplates
) -> dict[str, dict[str, Any]]:
    """Each workflow step's reference with its version fixed now (the highest stored,
    when it names none), so the children a task starts later do not depend on what is
    registered meanwhile."""
    pins: dict[str, dict[str, Any]] = {}
    for spec in template.steps:
        if spec.workflow is None:
            continue
        ref = spec.workflow.to_dict()
        found = stored.get(ref)
        if found is not None:
            ref["version"] = found[0].version
        pins[spec.name] = ref
    return pins


def create_task(
    conn: Connection,
    template: TemplateDefinition,
    request: TaskRequest,
    now: datetime,
    actor: str | None = None,
    *,
    template_id: int | None = None,
    max_steps: int = DEFAULT_MAX_TASK_STEPS,
    parent: tuple[int, int] | None = None,
    stored: StoredTemplates | None = None,
) -> int:
    """``insert_task``, then the task's root steps that run a child without a handler
    start theirs (and so on down). ``parent``: (task id, step id) of a child task."""
    stored = stored or StoredTemplates(conn)
    task_id, roots = insert_task(
        conn,
        template,
        request,
        now,
        actor,
        template_id=template_id,
        max_steps=max_steps,
        parent=parent,
        workflows=pinned_workflows(template, stored),
    )
    starting = [
        {**r, "status": "pending"}
        for r in roots
        if r["workflow"] is not None and not r["handler"] and not r["map_path"]
    ]
    if starting:
        history = HistoryWriter()
        started = start_children(conn, history, starting, now, actor=actor, stored=stored)
        if started.failed:
            # Nothing else of the new task has run: it cannot go on without this root.
            conn.execute("notify_steps_ready")
        history.flush(conn, now)
    return task_id


def start_children(
    conn: Connection,
    history: HistoryWriter,
    steps: list[Row],
    now: datetime,
    *,
    actor: str | None,
    contexts: dict[int, Any] | None = None,
    stored: StoredTemplates | None = None,
) -> Started:
    """Create the child task of each step (rows with id, task_id, name, status,
    workflow, group_id/map_item when an instance). ``contexts``: step id -> the context
    its handler returned. Steps still ``pending`` start (``pending -> in_progress``);
    the others are running already (their handler just returned)."""
    started = Started()
    if not steps:
        return started
    stored = stored or StoredTemplates(conn)
    contexts = contexts or {}
    parents = {
        t["id"]: t
        for t in conn.fetch_all("get_tasks", task_ids=sorted({s["task_id"] for s in steps}))
    }
    waiting: list[tuple[Row, int]] = []
    failures: list[tuple[Row, str, str]] = []
    for step in steps:
        parent = parents[step["task_id"]]
        found = stored.get(step["workflow"])
        if found is None:
            failures.append((step, "ChildTaskNotCreated", f"no template {_label(step)} is stored"))
            continue
        template, template_id = found
        context = contexts.get(step["id"], NO_CONTEXT)
        if context is NO_CONTEXT:
            context = step["map_item"] if step.get("group_id") is not None else parent["context"]
        problem = _context_problem(template, context)
        if problem is not None:
            failures.append((step, "InvalidChildContext", problem))
            continue
        request = TaskRequest(
            template.name,
            context,
            namespace=template.namespace,
            version=template.version,
            initiator=parent["initiator"],
            source_system=parent["source_system"],
            reason=f"child of task {parent['id']}, step {step['name']}",
            tags=tuple(parent["tags"] or ()),
            # The child's spans join the parent's trace.
            trace_context=parent["trace_context"],
        )
        child_id = create_task(
            conn,
            template,
            request,
            now,
            actor,
            template_id=template_id,
            max_steps=parent["max_steps"] or DEFAULT_MAX_TASK_STEPS,
            parent=(parent["id"], step["id"]),
            stored=stored,
        )
        waiting.append((step, child_id))
    started.waiting = _wait_for(conn, history, waiting, parents, now, actor)
    started.failed = fail_for_good(
        conn, history, [(s, _error(c, m)) for s, c, m in failures], parents, now, actor
    )
    return started


def _wait_for(
    conn: Connection,
    history: HistoryWriter,
    waiting: list[tuple[Row, int]],
    parents: dict[int, Row],
    now: datetime,
    actor: str | None,
) -> list[Row]:
    if not waiting:
        return []
    statuses = {step["id"]: step["status"] for step, _ in waiting}
    rows = [{"id": step["id"], "child_task_id": child} for step, child in waiting]
    changed = conn.fetch_all("start_child_steps", rows=Json(rows), now=now)
    _start_tasks(conn, history, [p for p in parents.values() if p["status"] == "pending"], now)
    for row in changed:
        if statuses[row["id"]] == "pending":
            history.change(
                Change(
                    row["task_id"],
                    "pending",
                    "in_progress",
                    row["transition_count"],
                    step_event("in_progress"),
                    step_id=row["id"],
                    step_name=row["name"],
                    actor=actor,
                    reason="child workflow",
                    payload={
                        "attempt": row["attempts"],
                        "max_attempts": row["max_attempts"],
                        "worker_id": actor,
                        "queued_seconds": 0.0,
                    },
                )
            )
        history.event(
            Event(
                "workflow.child_task_created",
                row["task_id"],
                {"child_task_id": row["child_task_id"]},
                row["id"],
                row["name"],
            )
        )
    return changed


def _start_tasks(conn: Connection, history: HistoryWriter, tasks: list[Row], now: datetime) -> None:
    """Parent tasks still pending start with their first child workflow step."""
    if not tasks:
        return
    for task in conn.fetch_all("start_tasks", task_ids=sorted(t["id"] for t in tasks), now=now):
        history.change(
            Change(
                task["id"],
                "pending",
                "in_progress",
                task["transition_count"],
                task_event("pending", "in_progress"),
                payload={
                    "namespace": task["namespace"],
                    "name": task["name"],
                    "version": task["version"],
                },
            )
        )


def fail_for_good(
    conn: Connection,
    history: HistoryWriter,
    failures: list[tuple[Row, dict[str, Any]]],
    parents: dict[int, Row],
    now: datetime,
    actor: str | None,
    *,
    reason: str | None = None,
) -> list[Row]:
    """Steps of child workflows fail, not retryable (running again would do the same)."""
    if not failures:
        return []
    statuses = {step["id"]: step["status"] for step, _ in failures}
    errors = {step["id"]: error for step, error in failures}
    rows = [
        {
            "id": step["id"],
            "status": "error",
            "results": None,
            "error": error,
            "retryable": False,
            "next_retry_at": None,
        }
        for step, error in failures
    ]
    changed = conn.fetch_all("finish_steps", rows=Json(rows), now=now)
    for row in changed:
        task = parents[row["task_id"]]
        error = errors[row["id"]]
        history.change(
            Change(
                row["task_id"],
                statuses[row["id"]],
                "error",
                row["transition_count"],
                step_event("error"),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason=reason,
                payload={
                    "attempt": row["attempts"],
                    "max_attempts": row["max_attempts"],
                    "duration_seconds": None,
                    "error_class": error["class"],
                    "error_message": error["message"],
                    "next_retry_at": None,
                    "namespace": task["namespace"],
                    "name": task["name"],
                    "version": task["version"],
                },
            )
        )
    return changed


def _context_problem(template: TemplateDefinition, context: Any) -> str | None:
    try:
        template.validate_context(context)
    except ValidationError as exc:
        details = "; ".join(exc.errors)
        return f"the context for a child task of {template.key} is invalid: {exc}" + (
            f" ({details})" if details else ""
        )
    return None


def _label(step: Row) -> str:
    ref = step["workflow"]
    version = ref.get("version")
    return f"{ref['namespace']}/{ref['name']}" + (f"@{version}" if version else "")


def _error(error_class: str, message: str) -> dict[str, Any]:
    return {"class": error_class, "message": message, "traceback": None}


def children_of(conn: Connection, task_id: int) -> list[Row]:
    """The child tasks a task started (id, status), oldest first."""
    return conn.fetch_all("children_of", task_id=task_id)
