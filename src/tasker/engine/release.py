"""What a finished step does to its children: release them, skip them, or let them wait.

When a step completes, is resolved by hand or is skipped, each child loses a remaining
parent (the ``release_children`` query). A child whose parents are all finished then

- becomes claimable (the query does that itself for a plain step), or
- is skipped when its ``join`` rule says so (``all``: a parent was skipped; ``any``: every
  parent was), which releases its own children in turn, or
- is expanded into its map instances (``map``, see ``engine/maps.py``), or
- starts its child task when it runs one without a handler (``workflow``, see
  ``engine/children.py``; map instances of such a step too), or
- starts waiting for its signal (``wait_for``). If the signal is already there, the child
  is claimable when it has a handler, and otherwise complete with the signal's payload
  as its results, which releases its children in turn.

A branching step's children that were not chosen are skipped before the step's children
are released (``skip_steps`` with the reason ``branch not taken``). Everything happens in
the caller's transaction, so a crash leaves either none of it or all of it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tasker.engine.children import start_children
from tasker.engine.history import Change, Event, HistoryWriter, step_event
from tasker.engine.maps import Settled, expand_groups, settle_groups
from tasker.engine.waits import begin_waits
from tasker.store.database import Connection, Row

BRANCH_NOT_TAKEN = "branch not taken"


@dataclass
class Released:
    """What releasing did: how many steps became claimable and in which tasks, and per
    task how many steps reached a state that counts as done (skipped, or completed by a
    signal)."""

    ready: int = 0
    ready_tasks: set[int] = field(default_factory=set)
    done: Counter[int] = field(default_factory=Counter)

    def add_done(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.done[row["task_id"]] += 1


def release_children(
    conn: Connection,
    finished_ids: Iterable[int],
    history: HistoryWriter,
    now: datetime,
    *,
    skipped_ids: Iterable[int] = (),
    actor: str | None = None,
) -> Released:
    """Children of steps that reached complete/resolved (``finished_ids``) or skipped
    (``skipped_ids``) lose a parent; follow the consequences down the graph."""
    released = Released()
    ready: dict[int, list[str]] = defaultdict(list)
    satisfied, skipped = list(finished_ids), list(skipped_ids)
    while satisfied or skipped:
        rows = conn.fetch_all("release_children", step_ids=satisfied, skipped_ids=skipped, now=now)
        join_skipped: dict[str, list[int]] = defaultdict(list)
        waiting: list[Row] = []
        groups: list[Row] = []
        spawning: list[Row] = []
        for child in rows:
            if child["status"] != "pending":
                continue
            reason = _skipped_by_join(child)
            if reason is not None:
                join_skipped[reason].append(child["id"])
            elif child["remaining_parents"] == 0:
                if child["wait_for"] is not None:
                    waiting.append(child)
                elif child["map_path"] is not None:
                    groups.append(child)
                elif child["workflow"] is not None and not child["handler"]:
                    spawning.append(child)
                elif child["claimable_at"] is not None:
                    ready[child["task_id"]].append(child["name"])
        skipped = []
        for reason, ids in join_skipped.items():
            changed = skip_steps(conn, history, ids, now, reason=reason, actor=actor)
            released.add_done(changed)
            skipped += [row["id"] for row in changed]
        completed, claimable = begin_waits(conn, history, waiting, now, actor=actor)
        completed += expand(conn, history, groups, now, actor).completed
        start_children(conn, history, spawning, now, actor=actor)
        released.add_done(completed)
        satisfied = [row["id"] for row in completed]
        for row in claimable:
            ready[row["task_id"]].append(row["name"])
    for task_id, names in ready.items():
        history.event(Event("workflow.steps_ready", task_id, {"steps": sorted(names)}))
    if ready:
        history.notify_steps_ready()
    released.ready = sum(len(names) for names in ready.values())
    released.ready_tasks = set(ready)
    return released


def expand(
    conn: Connection, history: HistoryWriter, groups: list[Row], now: datetime, actor: str | None
) -> Settled:
    """``expand_groups``; the instances of a group that runs a child workflow without a
    handler start their children at once (a failed start settles the group)."""
    settled = expand_groups(conn, history, groups, now, actor)
    spawning = [
        row for row in settled.created if row["workflow"] is not None and not row["handler"]
    ]
    if spawning:
        started = start_children(conn, history, spawning, now, actor=actor)
        failed = {row["group_id"] for row in started.failed if row["group_id"] is not None}
        more = settle_groups(conn, history, failed, now, actor)
        settled.failed += more.failed
    return settled


def _skipped_by_join(child: Row) -> str | None:
    """Why the join rule skips this pending child now, or None."""
    if child["join_mode"] == "any":
        if child["remaining_parents"] == 0 and child["skipped_parents"] == child["total_parents"]:
            return "every parent was skipped"
        return None
    return "a parent was skipped" if child["skipped_parents"] > 0 else None


def skip_steps(
    conn: Connection,
    history: HistoryWriter,
    step_ids: list[int],
    now: datetime,
    *,
    reason: str,
    actor: str | None = None,
) -> list[Row]:
    """Pending steps become skipped, with their history and events; returns the changed
    rows (the caller releases their children)."""
    if not step_ids:
        return []
    changed = conn.fetch_all("skip_steps", step_ids=sorted(step_ids), now=now)
    for row in changed:
        history.change(
            Change(
                row["task_id"],
                "pending",
                "skipped",
                row["transition_count"],
                step_event("skipped"),
                step_id=row["id"],
                step_name=row["name"],
                actor=actor,
                reason=reason,
            )
        )
    return changed
