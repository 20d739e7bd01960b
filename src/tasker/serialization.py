"""The task as the contract's JSON (REST responses and every CLI ``--json``)."""

from __future__ import annotations

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
    }
    if steps is not None:
        body["steps"] = [step_json(s) for s in steps]
    return body


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
