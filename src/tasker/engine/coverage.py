"""Which handlers the live workers serve, and the ready steps that none of them can run.

A worker resolves the handlers of its templates when it starts and claims only their
steps (``TemplateRegistry.load_handlers``); it records them with its lease in the
``workers`` table (``register_worker``). A worker is *live* while it is not stopped and
its last heartbeat is within its lease.

The readiness functions (SQL) say whether a step *may* run. On top of their rows,
``with_worker_coverage`` says when nobody *can*: a step ready for execution whose handler
no live worker serves (in the step's namespace) gets the blocking reason
``no_worker_for_handler``; ``ready_for_execution`` stays true, as the SQL computed it.
With no live worker at all, the rows are returned exactly as the SQL gave them: then
nothing runs whatever the handler, and the contract's readiness (a ready step has a null
blocking reason) holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tasker.definitions import HandlerCoverage
from tasker.store.database import Connection, Json, Row
from tasker.store.readiness import StepReadiness

NO_WORKER_FOR_HANDLER = "no_worker_for_handler"


@dataclass(frozen=True)
class LiveWorker:
    """A worker whose heartbeat is within its lease.

    namespaces: the namespaces it claims from; empty means all.
    handlers: the handler paths it claims; None means any (a worker started before
        migration 0005 recorded none).
    """

    id: str
    hostname: str
    pid: int
    namespaces: tuple[str, ...]
    handlers: frozenset[str] | None
    templates: tuple[str, ...]
    handler_errors: dict[str, str]
    lease_seconds: float
    last_heartbeat_at: datetime

    def serves(self, namespace: str, handler: str) -> bool:
        """Whether this worker would claim a step of ``namespace`` running ``handler``."""
        if self.namespaces and namespace not in self.namespaces:
            return False
        return self.handlers is None or handler in self.handlers


def register_worker(
    conn: Connection,
    *,
    worker_id: str,
    hostname: str,
    pid: int,
    namespaces: Sequence[str],
    concurrency: int,
    lease_seconds: float,
    coverage: HandlerCoverage,
    now: datetime,
) -> None:
    """Record a starting worker: what it serves, what it could not load, and its lease."""
    conn.execute(
        "register_worker",
        id=worker_id,
        hostname=hostname,
        pid=pid,
        namespaces=Json(list(namespaces)),
        concurrency=concurrency,
        handlers=Json(list(coverage.handlers)),
        templates=Json(list(coverage.templates)),
        handler_errors=Json(dict(coverage.errors)),
        lease_seconds=lease_seconds,
        now=now,
    )


def live_workers(conn: Connection, now: datetime, default_lease_seconds: float) -> list[LiveWorker]:
    """Workers live at ``now``. A worker that recorded no lease (started before migration
    0005) is judged by ``default_lease_seconds``."""
    rows = conn.fetch_all("live_workers", now=now, default_lease_seconds=default_lease_seconds)
    return [_live_worker(row) for row in rows]


def with_worker_coverage(
    conn: Connection,
    rows: list[StepReadiness],
    now: datetime,
    default_lease_seconds: float,
) -> list[StepReadiness]:
    """``rows`` with ``no_worker_for_handler`` on each ready step that no live worker
    serves, when at least one worker is live; otherwise ``rows`` unchanged."""
    ready = [row.workflow_step_id for row in rows if row.ready_for_execution]
    if not ready:
        return rows
    workers = live_workers(conn, now, default_lease_seconds)
    if not workers:
        return rows
    unserved = {
        step["id"]
        for step in conn.fetch_all("step_handlers", step_ids=ready)
        if not any(w.serves(step["namespace"], step["handler"]) for w in workers)
    }
    return [
        replace(row, blocking_reason=NO_WORKER_FOR_HANDLER)
        if row.workflow_step_id in unserved
        else row
        for row in rows
    ]


def _live_worker(row: Row) -> LiveWorker:
    handlers = row["handlers"]
    return LiveWorker(
        id=row["id"],
        hostname=row["hostname"],
        pid=row["pid"],
        namespaces=tuple(row["namespaces"] or ()),
        handlers=None if handlers is None else frozenset(handlers),
        templates=tuple(row["templates"] or ()),
        handler_errors=dict(row["handler_errors"] or {}),
        lease_seconds=float(row["lease_seconds"]),
        last_heartbeat_at=row["last_heartbeat_at"],
    )
