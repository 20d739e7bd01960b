"""``/v1/workers``: live and recently silent workers, what each runs and serves.

A worker's ``state`` is judged as ``/health/status`` judges it (``routes_health``):
*active* while its last heartbeat is within its own lease, *stale* when it has not
stopped yet is silent for longer (killed, hung, cut off), *stopped* when it stopped
cleanly. Stale and stopped workers are listed for a day after their last heartbeat.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tasker.api.deps import COMMON_ERRORS, TaskerDep
from tasker.api.routes_health import SILENT_WORKERS_SHOWN_FOR, worker_state
from tasker.api.security import Reader
from tasker.facade import Tasker

RUNNING_SHOWN = 1000  # running steps listed over all workers; held_steps counts them all

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=COMMON_ERRORS)


class RunningStep(BaseModel):
    step_id: int
    task_id: int
    name: str
    handler: str
    started_at: datetime | None = None
    lease_expires_at: datetime | None = None


class WorkerDetail(BaseModel):
    id: str
    hostname: str
    pid: int
    state: Literal["active", "stale", "stopped"]
    namespaces: list[str] = Field(description="Namespaces it claims from; empty: all.")
    concurrency: int
    lease_seconds: float
    started_at: datetime
    last_heartbeat_at: datetime
    heartbeat_age_seconds: float
    stopped_at: datetime | None = None
    held_steps: int
    running: list[RunningStep]
    templates: list[str] = Field(description="Templates it serves (namespace/name@version).")
    handlers: list[str] | None = Field(
        None, description="Handler paths it claims; null: any (a worker from before 0005)."
    )
    handler_errors: dict[str, str] = Field(
        default_factory=dict, description="Handlers it could not import, with the error."
    )
    abandoned_threads: int


@router.get(
    "",
    response_model=list[WorkerDetail],
    summary="Live and recently silent workers",
    operation_id="listWorkers",
)
def list_workers(tasker: TaskerDep, who: Reader) -> Any:
    return worker_views(tasker)


def worker_views(tasker: Tasker) -> list[dict[str, Any]]:
    """The workers ``/v1/workers`` lists, newest first (the dashboard shows the same)."""
    now = tasker.now()
    live = {w.id for w in tasker.live_workers()}
    running: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in tasker.running_steps(RUNNING_SHOWN):
        running[step["claimed_by"]].append(
            {
                "step_id": step["id"],
                "task_id": step["task_id"],
                "name": step["name"],
                "handler": step["handler"],
                "started_at": step["last_attempted_at"],
                "lease_expires_at": step["lease_expires_at"],
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
            "started_at": w["started_at"],
            "last_heartbeat_at": w["last_heartbeat_at"],
            "heartbeat_age_seconds": max(0.0, (now - w["last_heartbeat_at"]).total_seconds()),
            "stopped_at": w["stopped_at"],
            "held_steps": w["held_steps"],
            "running": running.get(w["id"], []),
            "templates": list(w["templates"] or []),
            "handlers": None if w["handlers"] is None else sorted(w["handlers"]),
            "handler_errors": dict(w["handler_errors"] or {}),
            "abandoned_threads": w["abandoned_threads"] or 0,
        }
        for w in tasker.workers()
        if w["id"] in live or now - w["last_heartbeat_at"] < SILENT_WORKERS_SHOWN_FOR
    ]
