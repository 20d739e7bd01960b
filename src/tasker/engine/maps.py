"""Map: a step that fans out at run time, one instance per item of a list in a parent's
results (``map: list_files.files``).

The step itself is a *group*: it never runs. In the transaction that finishes its last
parent, ``expand_groups`` reads the list and creates every instance in one statement
(``load_file[0]``, ``load_file[1]``…), each an ordinary step with the group's handler and
settings, so a crash leaves either no instances or all of them. The group's state is
derived from its instances' by ``settle_groups``, called whenever one of them changes:
``complete`` when all are complete or resolved (its results are their results, in item
order), ``error`` while one has failed for good, ``in_progress`` otherwise. A list that
is not a list, is longer than ``max_items`` or would take the task past its step cap
fails the group for good, with the numbers in the message. An empty list completes the
group at once with ``[]``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasker.engine.history import Change, Event, HistoryWriter, step_event
from tasker.store.database import Connection, Json, Row

DEFAULT_MAX_TASK_STEPS = 100_000
"""Steps a task may have, map instances included (``TASKER_MAX_TASK_STEPS``)."""


@dataclass
class Settled:
    """Groups that reached a final state: ``completed`` ones release their children.
    ``created``: the instances expanding made (id, task_id, name, handler, workflow,
    map_item, group_id)."""

    completed: list[Row] = field(default_factory=list)
    failed: list[Row] = field(default_factory=list)
    created: list[Row] = field(default_factory=list)


def expand_groups(
    conn: Connection, history: HistoryWriter, groups: list[Row], now: datetime, actor: str | None
) -> Settled:
    """Create the instances of groups whose parents are all done."""
    settled = Settled()
    if not groups:
        return settled
    sources: dict[int, dict[str, Any]] = defaultdict(dict)
    for row in conn.fetch_all("parent_results", step_ids=[g["id"] for g in groups]):
        sources[row["step_id"]][row["name"]] = row["results"]
    tasks = {
        t["id"]: t
        for t in conn.fetch_all("get_tasks", task_ids=sorted({g["task_id"] for g in groups}))
    }
    added: dict[int, int] = defaultdict(int)
    for group in groups:
        task = tasks[group["task_id"]]
        group = {
            **group,
            "task_namespace": task["namespace"],
            "task_name": task["name"],
            "task_version": task["version"],
        }
        room = (task["max_steps"] or DEFAULT_MAX_TASK_STEPS) - task["total_steps"]
        items, problem = map_items(group, sources[group["id"]], room - added[task["id"]])
        if problem is not None:
            settled.failed += _set_groups(
                conn, history, [(group, "error", None, _error(problem))], now, actor
            )
            continue
        assert items is not None
        _set_groups(conn, history, [(group, "in_progress", None, None)], now, actor, len(items))
        if not items:
            settled.completed += _set_groups(
                conn, history, [({**group, "status": "in_progress"}, "complete", [], None)], now,
                actor,
            )  # fmt: skip
            continue
        rows = [{"index": index, "item": item} for index, item in enumerate(items)]
        created = conn.fetch_all("expand_map", group_id=group["id"], rows=Json(rows), now=now)
        conn.execute("copy_map_edges", group_id=group["id"])
        added[task["id"]] += len(created)
        settled.created += [
            {**step, "group_id": group["id"], "status": "pending"} for step in created
        ]
        for step in created:
            history.change(
                Change(
                    step["task_id"],
                    None,
                    "pending",
                    1,
                    None,
                    step_id=step["id"],
                    step_name=step["name"],
                    actor=actor,
                )
            )
        history.event(
            Event(
                "workflow.map_expanded",
                group["task_id"],
                {"instances": len(created)},
                group["id"],
                group["name"],
            )
        )
    for task_id, n in added.items():
        conn.execute("add_total_steps", task_id=task_id, n=n, now=now)
    if added:
        conn.execute("notify_steps_ready")
    return settled


def map_items(
    group: Row, parent_results: dict[str, Any], room: int
) -> tuple[list[Any] | None, str | None]:
    """The list a group maps over, or why it cannot (``room``: steps the task has left)."""
    path: str = group["map_path"]
    parent, keys = _split(path, list(parent_results))
    value: Any = parent_results.get(parent)
    walked = parent
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None, f"map {path}: {walked} has no key {key!r} (got {_kind(value)})"
        value = value[key]
        walked = f"{walked}.{key}"
    if not isinstance(value, list):
        return None, f"map {path}: expected a list, got {_kind(value)}"
    limit = group["max_items"]
    if len(value) > limit:
        return None, f"map {path}: {len(value)} items is more than max_items ({limit})"
    if len(value) > room:
        return None, (
            f"map {path}: {len(value)} instances would take the task past its limit of steps "
            f"(TASKER_MAX_TASK_STEPS; room left: {max(room, 0)})"
        )
    return value, None


def _split(path: str, parents: list[str]) -> tuple[str, list[str]]:
    for parent in sorted(parents, key=len, reverse=True):
        if path.startswith(parent + "."):
            return parent, path[len(parent) + 1 :].split(".")
    head, _, rest = path.partition(".")  # validation makes this unreachable
    return head, rest.split(".")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _error(message: str) -> dict[str, Any]:
    return {"class": "MapError", "message": message, "traceback": None}


def settle_groups(
    conn: Connection,
    history: HistoryWriter,
    group_ids: set[int],
    now: datetime,
    actor: str | None,
) -> Settled:
    """Derive each group's state from its instances after some of them changed."""
    settled = Settled()
    if not group_ids:
        return settled
    changes: list[tuple[Row, str, Any, dict[str, Any] | None]] = []
    reopened: list[tuple[Row, str, Any, dict[str, Any] | None]] = []  # error -> complete
    for group in conn.fetch_all("group_progress", group_ids=sorted(group_ids)):
        status = group["status"]
        if status in ("complete", "cancelled", "resolved_manually") or group["total"] == 0:
            continue
        if group["done"] == group["total"]:
            if status == "error":  # the last failed instance was resolved by hand
                reopened.append((group, "in_progress", None, None))
                group = {**group, "status": "in_progress"}
            instances = conn.fetch_all("group_instance_results", group_id=group["id"])
            results = [row["results"] for row in instances]
            changes.append((group, "complete", results, None))
        elif group["failed"] and status == "in_progress":
            failed = f"{group['name']}[{group['first_failed']}]"
            message = f"instance {failed} failed for good ({group['failed']} of {group['total']})"
            changes.append((group, "error", None, _error(message)))
        elif not group["failed"] and status == "error":
            changes.append((group, "in_progress", None, None))
    # Two statements: one UPDATE cannot move the same row twice.
    _set_groups(conn, history, reopened, now, actor)
    for row in _set_groups(conn, history, changes, now, actor):
        if row["status"] == "complete":
            settled.completed.append(row)
        elif row["status"] == "error":
            settled.failed.append(row)
    return settled


def _set_groups(
    conn: Connection,
    history: HistoryWriter,
    changes: list[tuple[Row, str, Any, dict[str, Any] | None]],
    now: datetime,
    actor: str | None,
    instances: int | None = None,
) -> list[Row]:
    if not changes:
        return []
    rows = [
        {"id": g["id"], "status": to, "results": results, "error": error}
        for g, to, results, error in changes
    ]
    by_id = {g["id"]: (g, error) for g, _, _, error in changes}
    changed = conn.fetch_all("set_group_status", rows=Json(rows), now=now)
    for row in changed:
        group, error = by_id[row["id"]]
        payload: dict[str, Any] = {"attempt": row["attempts"], "max_attempts": row["max_attempts"]}
        if row["status"] == "in_progress":
            payload.update(worker_id=actor, queued_seconds=0.0)
            if instances is not None:
                payload["instances"] = instances
        if row["status"] == "error" and error is not None:
            payload.update(
                duration_seconds=None,
                error_class=error["class"],
                error_message=error["message"],
                next_retry_at=None,
                namespace=group["task_namespace"],
                name=group["task_name"],
                version=group["task_version"],
            )
        history.change(
            Change(
                row["task_id"],
                group["status"],
                row["status"],
                row["transition_count"],
                step_event(row["status"]),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason="map group",
                payload=payload,
            )
        )
    return changed
