"""Health probes, the health status and Prometheus metrics.

``/health/live`` answers without touching the database (the process is up);
``/health/ready`` is 503 until the database is reachable and every migration applied.
Both stay open whatever the authentication, for load balancers and orchestrators.
``/health/status`` (the health counts and the workers) and ``/metrics`` tell about the
work, so with authentication on they need a ``tasks:read`` token like every ``/v1`` read.

A worker is *active* while its last heartbeat is within its own lease (the lease it
registered with, else ``TASKER_LEASE_SECONDS``), as ``Tasker.live_workers`` judges it;
*stale* when it has not stopped yet is silent for longer (killed with ``kill -9``, hung,
cut off); *stopped* when it stopped cleanly. Stale and stopped workers are listed for a
day after their last heartbeat.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import generate_latest

from tasker.api.deps import TaskerDep, error_responses
from tasker.api.errors import ApiError
from tasker.api.metrics import CONTENT_TYPE, HealthMetrics
from tasker.api.schemas import LiveOut, ReadyOut, StatusOut
from tasker.api.security import Reader
from tasker.exceptions import TaskerError
from tasker.facade import Tasker
from tasker.store.database import Row
from tasker.store.migrations import migration_status
from tasker.store.readiness import SystemHealthCounts

router = APIRouter(tags=["health"])

SILENT_WORKERS_SHOWN_FOR = timedelta(hours=24)  # stale and stopped ones, after their last beat


@router.get(
    "/health/live",
    response_model=LiveOut,
    summary="The process is up (no database)",
    operation_id="checkLive",
)
def live() -> Any:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    summary="The database is reachable and its schema current",
    responses=error_responses(503),
    operation_id="checkReady",
)
def ready(tasker: TaskerDep) -> Any:
    try:
        statuses = migration_status(tasker.database)
    except TaskerError as exc:
        raise ApiError(503, "database_unavailable", f"database not usable: {exc}") from exc
    pending = [f"{s.version:04d}_{s.name}" for s in statuses if not s.applied]
    if pending:
        raise ApiError(
            503,
            "schema_not_ready",
            "database schema is not current; run `tasker db upgrade`",
            {"pending": pending},
        )
    return {
        "status": "ready",
        "database": tasker.database.dialect,
        "schema_version": max((s.version for s in statuses), default=0),
    }


@router.get(
    "/health/status",
    response_model=StatusOut,
    summary="Task and step counts, the queue, expired leases and workers",
    responses=error_responses(401, 403, 503),
    operation_id="getHealthStatus",
)
def status(tasker: TaskerDep, who: Reader) -> Any:
    now = tasker.now()
    counts, live = health_counts(tasker)
    workers = tasker.workers()
    shown = [
        {
            **w,
            "namespaces": list(w["namespaces"] or []),
            "lease_seconds": w["lease_seconds"] or tasker.settings.lease_seconds,
            "state": worker_state(w, live),
        }
        for w in workers
        if w["id"] in live or now - w["last_heartbeat_at"] < SILENT_WORKERS_SHOWN_FOR
    ]
    degraded = counts.expired_leases > 0 or any(w["state"] == "stale" for w in shown)
    return {
        "status": "degraded" if degraded else "healthy",
        "database": tasker.database.dialect,
        "checked_at": now,
        "counts": asdict(counts),
        "workers": shown,
    }


def health_counts(tasker: Tasker) -> tuple[SystemHealthCounts, set[str]]:
    """The health counts, their ``active_workers`` being the live workers (returned too, by
    id): the SQL function counts a heartbeat within a fixed 90 s, not the worker's lease."""
    counts = tasker.health_counts()
    live = {w.id for w in tasker.live_workers()}
    return replace(counts, active_workers=len(live)), live


def worker_state(worker: Row, live: set[str]) -> str:
    if worker["stopped_at"] is not None:
        return "stopped"
    return "active" if worker["id"] in live else "stale"


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 503),
    },
    operation_id="getMetrics",
)
def metrics(request: Request, tasker: TaskerDep, who: Reader) -> Response:
    counts, _ = health_counts(tasker)
    gauges: HealthMetrics = request.app.state.metrics
    # The database gauges, then this process's own counters (tasks created through it...).
    body = gauges.render(counts) + generate_latest(tasker.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE)
