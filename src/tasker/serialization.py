"""The task as the contract's JSON (REST responses and every CLI ``--json``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from tasker.store.database import Row


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``; microseconds kept only when present."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def step_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "depends_on": list(row.get("depends_on") or []),
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "retryable": bool(row["retryable"]),
        "results": row["results"],
        "error": row["error"],
        "next_retry_at": iso(row["next_retry_at"]) if row["status"] == "error" else None,
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        # Dynamic workflows: the step's join rule, the children it may choose among, and
        # the signal it waits for (absent from rows that do not carry them).
        "join": row.get("join_mode") or "all",
        "branches": list(row.get("branches") or []),
        "wait_for": row.get("wait_for"),
        "map": row.get("map_path"),
        "index": row.get("map_index"),
        # Child workflows: the template it runs as a child task, and that task once started.
        "workflow": row.get("workflow"),
        "child_task_id": row.get("child_task_id"),
    }


def task_json(task: Row, steps: list[Row] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task["id"],
        "namespace": task["namespace"],
        "name": task["name"],
        "version": task["version"],
        "status": task["status"],
        "context": task["context"],
        "idempotency_key": task["idempotency_key"],
        "initiator": task["initiator"],
        "source_system": task["source_system"],
        "reason": task["reason"],
        "tags": list(task["tags"] or []),
        "created_at": iso(task["created_at"]),
        "completed_at": iso(task["completed_at"]),
        # Delayed start and priority (rows from before migration 0008 lack them).
        "run_at": iso(task.get("run_at")),
        "priority": task.get("priority") or 0,
        # A child task: the task and the step that started it (None otherwise).
        "parent_task_id": task.get("parent_task_id"),
        "parent_step_id": task.get("parent_step_id"),
    }
    if steps is not None:
        body["steps"] = _with_groups(steps)
    return body


def _with_groups(steps: list[Row]) -> list[dict[str, Any]]:
    """Step JSON in order; a map instance names its ``group``, and a group counts its
    ``instances`` by state (``{"total": N, "complete": k, ...}``; None before it expands)."""
    names = {s["id"]: s["name"] for s in steps}
    counts: dict[int, Counter[str]] = {}
    for s in steps:
        if s.get("group_id") is not None:
            counts.setdefault(s["group_id"], Counter())[s["status"]] += 1
    out = []
    for s in steps:
        body = step_json(s)
        group_id = s.get("group_id")
        body["group"] = names.get(group_id) if group_id is not None else None
        tally = counts.get(s["id"])
        if s.get("map_path") is not None and (tally or s["status"] != "pending"):
            body["instances"] = {"total": sum((tally or Counter()).values()), **(tally or {})}
        else:
            body["instances"] = None
        out.append(body)
    return out


def transition_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "entity": "step" if "step_id" in row else "task",
        "step_id": row.get("step_id"),
        "step_name": row.get("step_name"),
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "reason": row["reason"],
        "metadata": row["metadata"],
        "actor": row["actor"],
        "sort_key": row["sort_key"],
        "created_at": iso(row["created_at"]),
    }


def event_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "task_id": row["task_id"],
        "step_id": row["step_id"],
        "step_name": row["step_name"],
        "created_at": iso(row["created_at"]),
        "payload": row["payload"],
    }
