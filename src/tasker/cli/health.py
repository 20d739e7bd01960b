"""``tasker health`` and ``tasker workers``: what the system and its workers are doing, as
``GET /health/status`` and ``GET /v1/workers`` tell it, without a running API.

A worker is *active* while its last heartbeat is within its own lease
(``Tasker.live_workers``), *stale* when it has not stopped yet is silent for longer (killed,
hung, cut off), *stopped* when it stopped cleanly; stale and stopped workers are listed for
a day after their last heartbeat. These are the rules of ``api/routes_health.py``, written
again here because importing the API would import FastAPI.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from tasker.cli import common
from tasker.cli.render import table
from tasker.facade import Tasker
from tasker.serialization import iso
from tasker.store.database import Row

SILENT_WORKERS_SHOWN_FOR = timedelta(hours=24)
RUNNING_SHOWN = 1000  # running steps listed over all workers; held_steps counts them all
RUNNING_NAMED = 3  # running steps named per worker in the table (--json lists them all)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def worker_state(worker: Row, live: set[str]) -> str:
    if worker["stopped_at"] is not None:
        return "stopped"
    return "active" if worker["id"] in live else "stale"


def shown_workers(tasker: Tasker, now: datetime) -> tuple[list[Row], set[str]]:
    """The workers worth showing (live ones, and others heard from within a day), with the
    ids of the live ones."""
    live = {w.id for w in tasker.live_workers()}
    shown = [
        w
        for w in tasker.workers()
        if w["id"] in live or now - w["last_heartbeat_at"] < SILENT_WORKERS_SHOWN_FOR
    ]
    return shown, live


def worker_views(tasker: Tasker) -> list[dict[str, Any]]:
    """The workers as ``GET /v1/workers`` shows them (the same keys), newest first."""
    now = tasker.now()
    shown, live = shown_workers(tasker, now)
    running: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in tasker.running_steps(RUNNING_SHOWN):
        running[step["claimed_by"]].append(
            {
                "step_id": step["id"],
                "task_id": step["task_id"],
                "name": step["name"],
                "handler": step["handler"],
                "started_at": iso(step["last_attempted_at"]),
                "lease_expires_at": iso(step["lease_expires_at"]),
            }
        )
    return [
        {
            "id": w["id"],
            "hostname": w["hostname"],
            "pid": w["pid"],
            "state": worker_state(w, live),
            "namespaces": list(w["namespaces"] or []),
            "concurrency": w["concurrency"],
            "lease_seconds": w["lease_seconds"] or tasker.settings.lease_seconds,
            "started_at": iso(w["started_at"]),
            "last_heartbeat_at": iso(w["last_heartbeat_at"]),
            "heartbeat_age_seconds": round(
                max(0.0, (now - w["last_heartbeat_at"]).total_seconds()), 3
            ),
            "stopped_at": iso(w["stopped_at"]),
            "held_steps": w["held_steps"],
            "running": running.get(w["id"], []),
            "templates": list(w["templates"] or []),
            "handlers": None if w["handlers"] is None else sorted(w["handlers"]),
            "handler_errors": dict(w["handler_errors"] or {}),
            "abandoned_threads": w["abandoned_threads"] or 0,
        }
        for w in shown
    ]


def workers_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the workers: live, stale (silent past their lease) or stopped, their last
    heartbeat, the steps they are running and the templates they serve."""
    with common.open_tasker(ctx) as tasker:
        views = worker_views(tasker)
    if as_json:
        common.print_json(views)
        return
    if not views:
        common.info("no worker heard from in the last day: start one with `tasker worker`")
        return
    grid = table("id", "host", "pid", "state", "heartbeat", "running", "templates")
    for view in views:
        running = view["running"]
        named = ", ".join(f"{r['task_id']}/{r['name']}" for r in running[:RUNNING_NAMED])
        more = f" +{len(running) - RUNNING_NAMED}" if len(running) > RUNNING_NAMED else ""
        grid.add_row(
            view["id"],
            view["hostname"],
            str(view["pid"]),
            view["state"],
            f"{view['heartbeat_age_seconds']:.0f} s ago",
            f"{view['held_steps']}/{view['concurrency']}" + (f" {named}{more}" if named else ""),
            ", ".join(view["templates"]) or "—",
        )
    common.stdout_console().print(grid)


def health_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Task and step counts, the queue, expired leases and workers, as GET /health/status
    gives them: "degraded" when a lease expired or a worker shown is stale. Exit 3 when the
    database cannot be reached."""
    with common.open_tasker(ctx) as tasker:
        now = tasker.now()
        shown, live = shown_workers(tasker, now)
        counts = replace(tasker.health_counts(), active_workers=len(live))
        dialect = tasker.database.dialect
        lease_seconds = tasker.settings.lease_seconds
    workers = [
        {
            "id": w["id"],
            "hostname": w["hostname"],
            "pid": w["pid"],
            "namespaces": list(w["namespaces"] or []),
            "concurrency": w["concurrency"],
            "started_at": iso(w["started_at"]),
            "last_heartbeat_at": iso(w["last_heartbeat_at"]),
            "stopped_at": iso(w["stopped_at"]),
            "held_steps": w["held_steps"],
            "abandoned_threads": w["abandoned_threads"] or 0,
            "lease_seconds": w["lease_seconds"] or lease_seconds,
            "state": worker_state(w, live),
        }
        for w in shown
    ]
    degraded = counts.expired_leases > 0 or any(w["state"] == "stale" for w in workers)
    status = {
        "status": "degraded" if degraded else "healthy",
        "database": dialect,
        "checked_at": iso(now),
        "counts": asdict(counts),
        "workers": workers,
    }
    if as_json:
        common.print_json(status)
        return
    c = counts
    stale = sum(w["state"] == "stale" for w in workers)
    grid = table("", "total", "pending", "in_progress", "complete", "error", "other")
    grid.add_row(
        "tasks",
        str(c.total_tasks),
        str(c.pending_tasks),
        str(c.in_progress_tasks),
        str(c.complete_tasks),
        str(c.error_tasks),
        f"{c.cancelled_tasks} cancelled, {c.resolved_manually_tasks} resolved",
    )
    grid.add_row(
        "steps",
        str(c.total_steps),
        str(c.pending_steps),
        str(c.in_progress_steps),
        str(c.complete_steps),
        str(c.error_steps),
        f"{c.retrying_steps} retrying, {c.exhausted_steps} exhausted",
    )
    console = common.stdout_console()
    console.print(f"{status['status']} · {dialect} · checked {status['checked_at']}")
    console.print(grid)
    console.print(
        f"queue: {c.claimable_steps} claimable · expired leases: {c.expired_leases}"
        f" · workers: {c.active_workers} active, {stale} stale",
        markup=False,
    )
