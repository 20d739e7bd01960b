"""Rich renderings shared by several commands: coloured states and the DAG as a tree."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

STATE_STYLES = {
    "pending": "dim",
    "in_progress": "yellow",
    "complete": "green",
    "error": "red",
    "cancelled": "magenta",
    "resolved_manually": "cyan",
    "skipped": "dim",
}


def table(*headers: str) -> Table:
    """A table whose cells fold rather than end in "…": names and ids stay whole even at
    the 80 columns Rich assumes when stdout is not a terminal."""
    grid = Table()
    for header in headers:
        grid.add_column(header, overflow="fold")
    return grid


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def primary_parents(
    depends_on: Mapping[str, Sequence[str]], levels: Mapping[str, int]
) -> dict[str, str | None]:
    """For each step, the parent it is drawn under: the deepest one (the one that sets its
    level), the first listed on a tie. Roots map to None. Every step appears once."""
    primary: dict[str, str | None] = {}
    for name, parents in depends_on.items():
        best: str | None = None
        for parent in parents:
            if best is None or levels[parent] > levels[best]:
                best = parent
        primary[name] = best
    return primary


def dag_tree(
    title: Text | str,
    order: Sequence[str],
    depends_on: Mapping[str, Sequence[str]],
    levels: Mapping[str, int],
    label: Callable[[str], Text],
) -> Tree:
    """A tree of the DAG: children under parents, siblings in ``order``. A step with
    several parents sits under its deepest one and names the others ("also after")."""
    tree = Tree(title)
    primary = primary_parents(depends_on, levels)
    nodes: dict[str | None, Tree] = {None: tree}
    # Parents before children: by level, then by the given order.
    position = {name: index for index, name in enumerate(order)}
    for name in sorted(order, key=lambda n: (levels[n], position[n])):
        text = Text(f"L{levels[name]} ", style="bold blue") + label(name)
        others = [p for p in depends_on[name] if p != primary[name]]
        if others:
            text.append(f"  (also after {', '.join(others)})", style="dim")
        nodes[name] = nodes[primary[name]].add(text)
    return tree


def when(value: str | None) -> str:
    """A contract timestamp (ISO 8601 UTC) for people, to the second: ``2026-01-01 00:00:00Z``."""
    return "—" if value is None else value.replace("T", " ")[:19] + "Z"


def start_line(run_at: datetime, now: datetime) -> str:
    """A delayed task's start for people: ``scheduled: starts at 14:03:12 UTC (in 41 s)``
    (with the date when it is not today), or when it was due once that has passed."""
    at = run_at.astimezone(UTC)
    today = at.date() == now.astimezone(UTC).date()
    shown = at.strftime("%H:%M:%S UTC" if today else "%Y-%m-%d %H:%M:%S UTC")
    if at <= now:
        return f"start: due at {shown} ({span(now - at)} ago)"
    return f"scheduled: starts at {shown} (in {span(at - now)})"


def span(delta: timedelta) -> str:
    """A duration for people, to its two largest units: ``41 s``, ``10 min 5 s``, ``2 d 3 h``."""
    seconds = max(0, math.ceil(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if parts or seconds >= size or unit == "s":
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def error_summary(error: Any) -> str:
    if not isinstance(error, Mapping):
        return str(error)
    return f"{error.get('class', 'Error')}: {error.get('message', '')}"


RESULT_PREVIEW_CHARS = 80


def result_preview(results: Any, limit: int = RESULT_PREVIEW_CHARS) -> str:
    """A step's results as compact JSON on one line, cut to ``limit`` characters with "…"."""
    text = json.dumps(results, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
