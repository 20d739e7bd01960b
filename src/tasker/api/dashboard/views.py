"""What the dashboard's pages show, computed without I/O: blocking reasons in words, the
DAG's layout, results cut to a readable size. Unit-tested in tests/unit/test_dashboard_views.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasker.serialization import iso
from tasker.store.readiness import StepReadiness

FINAL_TASK_STATES = frozenset({"complete", "cancelled", "resolved_manually"})
RESULT_PREVIEW_CHARS = 4000  # larger results are cut, with a link to the whole JSON


def in_seconds(when: datetime, now: datetime) -> str:
    """``"in 41 s"``, ``"in 3 min"``, ``"2 h ago"``: how far ``when`` is from ``now``."""
    seconds = (when - now).total_seconds()
    size = abs(seconds)
    if size < 90:
        amount = f"{size:.0f} s"
    elif size < 90 * 60:
        amount = f"{size / 60:.0f} min"
    elif size < 36 * 3600:
        amount = f"{size / 3600:.0f} h"
    else:
        amount = f"{size / 86400:.0f} d"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


@dataclass(frozen=True)
class Blocking:
    """Why a step is not running, in words; ``at`` is a time the words refer to."""

    text: str
    at: datetime | None = None


def blocking_reason(
    row: StepReadiness,
    *,
    now: datetime,
    handler: str | None = None,
    waiting_on: Sequence[str] = (),
    signal: str | None = None,
) -> Blocking | None:
    """The readiness row's ``blocking_reason`` as an operator would say it; None for a
    finished step. ``waiting_on``: the parents not done yet; ``handler``: the step's;
    ``signal``: the name it waits for (``wait_for``)."""
    reason = row.blocking_reason
    attempts = f"{row.attempts}/{row.max_attempts}"
    if reason is None:
        if row.ready_for_execution:
            return Blocking("ready: waiting for a worker to claim it")
        return None
    if reason == "finished":
        return None
    if reason == "dependencies_not_satisfied":
        done = f"{row.completed_parents}/{row.total_parents} parents done"
        if waiting_on:
            return Blocking(f"waiting for {', '.join(waiting_on)} ({done})")
        return Blocking(f"waiting for its parents ({done})")
    if reason == "waiting_for_backoff" and row.next_retry_at is not None:
        return Blocking(
            f"waiting for backoff until {iso(row.next_retry_at)} "
            f"({in_seconds(row.next_retry_at, now)}), attempt {attempts} failed",
            row.next_retry_at,
        )
    words = {
        "waiting_for_backoff": "waiting for backoff",
        "retries_exhausted": f"retries exhausted: {attempts}",
        "not_retryable": f"failed for good (not retryable) after attempt {attempts}",
        "in_progress": f"running: attempt {attempts}",
        "cancelled": "cancelled",
        "no_worker_for_handler": f"no live worker serves handler {handler or '(unknown)'}",
        "skipped": "skipped: its branch was not taken",
        "waiting_for_signal": f"waiting for signal {signal}" if signal else "waiting for a signal",
        "waiting_for_child": "waiting for its child task",
        "scheduled": "scheduled: the task has not reached its start time",
        "concurrency_limit": "waiting for a concurrency slot",
        "rate_limited": "rate limited: waiting for a token",
    }
    return Blocking(words.get(reason, reason.replace("_", " ")))


def waiting_parents(
    depends_on: Iterable[str], statuses: Mapping[str, str], done: Iterable[str]
) -> list[str]:
    """The parents (by name) whose status is not one of ``done``."""
    finished = set(done)
    return [p for p in depends_on if statuses.get(p) not in finished]


def map_summary(over: str | None, instances: Mapping[str, int]) -> str:
    """A map group in words: ``"map over extract.files: 4 instances (3 complete, 1 error)"``."""
    total = instances.get("total", 0)
    states = ", ".join(f"{n} {state}" for state, n in sorted(instances.items()) if state != "total")
    what = f"map over {over}: " if over else ""
    noun = "instance" if total == 1 else "instances"
    return f"{what}{total} {noun}" + (f" ({states})" if states else "")


def preview_json(value: Any, limit: int = RESULT_PREVIEW_CHARS) -> tuple[str, bool]:
    """Pretty JSON of ``value`` cut to ``limit`` characters; True when it was cut."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text, False
    return text[:limit], True


# -- the DAG as an SVG --------------------------------------------------------------------

NODE_WIDTH = 170
NODE_HEIGHT = 26
COLUMN_GAP = 60
ROW_GAP = 10
MARGIN = 10
LABEL_CHARS = 22


@dataclass(frozen=True)
class DagNode:
    name: str
    status: str
    level: int
    x: int
    y: int
    label: str
    anchor: str  # the id of the step's row on the page ("" on a template: no rows)
    count: int | None = None  # a map group: its number of instances


@dataclass(frozen=True)
class DagEdge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class DagLayout:
    width: int
    height: int
    nodes: list[DagNode] = field(default_factory=list)
    edges: list[DagEdge] = field(default_factory=list)


@dataclass(frozen=True)
class DagInput:
    name: str
    status: str
    level: int
    depends_on: Sequence[str]
    anchor: str = ""
    count: int | None = None  # a map group, drawn as one node: its number of instances


def layout_dag(steps: Sequence[DagInput]) -> DagLayout:
    """Steps in columns by dependency level (roots on the left), in input order within a
    column; an edge from the right side of each parent to the left side of its child."""
    rows_in_level: dict[int, int] = {}
    nodes: dict[str, DagNode] = {}
    for step in steps:
        row = rows_in_level.get(step.level, 0)
        rows_in_level[step.level] = row + 1
        suffix = f" \N{MULTIPLICATION SIGN}{step.count}" if step.count is not None else ""
        room = LABEL_CHARS - len(suffix)
        name = step.name if len(step.name) <= room else step.name[: room - 1] + "…"
        label = name + suffix
        nodes[step.name] = DagNode(
            name=step.name,
            status=step.status,
            level=step.level,
            x=MARGIN + step.level * (NODE_WIDTH + COLUMN_GAP),
            y=MARGIN + row * (NODE_HEIGHT + ROW_GAP),
            label=label,
            anchor=step.anchor,
            count=step.count,
        )
    edges = [
        DagEdge(
            nodes[parent].x + NODE_WIDTH,
            nodes[parent].y + NODE_HEIGHT // 2,
            nodes[step.name].x,
            nodes[step.name].y + NODE_HEIGHT // 2,
        )
        for step in steps
        for parent in step.depends_on
        if parent in nodes
    ]
    columns = max(rows_in_level, default=-1) + 1
    tallest = max(rows_in_level.values(), default=0)
    return DagLayout(
        width=2 * MARGIN + max(columns, 1) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP,
        height=2 * MARGIN + max(tallest, 1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP,
        nodes=list(nodes.values()),
        edges=edges,
    )
