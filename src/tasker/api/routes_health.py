"""Health probes and Prometheus metrics; always open, except ``/metrics`` when protected.

``/health/live`` answers without touching the database (the process is up);
``/health/ready`` is 503 until the database is reachable and every migration applied;
``/health/status`` reports the health counts and the workers, a worker being *stale*
when it has not heartbeated for three lease periods.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import generate_latest

from tasker.api.deps import TaskerDep, error_responses
from tasker.api.errors import ApiError
from tasker.api.metrics import CONTENT_TYPE, HealthMetrics
from tasker.api.schemas import LiveOut, ReadyOut, StatusOut
from tasker.api.security import Principal, metrics_principal
from tasker.exceptions import TaskerError
from tasker.store import readiness as readiness_sql
from tasker.store.database import Row
from tasker.store.migrations import migration_status

router = APIRouter(tags=["health"])

STALE_AFTER_LEASES = 3  # a worker silent for this many lease periods is stale
STOPPED_WORKERS_SHOWN_FOR = timedelta(hours=24)


@router.get("/health/live", response_model=LiveOut, summary="The process is up (no database)")
def live() -> Any:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    summary="The database is reachable and its schema current",
    responses=error_responses(503),
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
    responses=error_responses(503),
)
def status(tasker: TaskerDep) -> Any:
    now = tasker.now()
    counts, workers = tasker.read(
        lambda c: (readiness_sql.system_health_counts(c, now), c.fetch_all("list_workers"))
    )
    stale_after = timedelta(seconds=STALE_AFTER_LEASES * tasker.settings.lease_seconds)
    shown = [
        {**w, "state": worker_state(w, now, stale_after)}
        for w in workers
        if w["stopped_at"] is None or now - w["stopped_at"] < STOPPED_WORKERS_SHOWN_FOR
    ]
    degraded = counts.expired_leases > 0 or any(w["state"] == "stale" for w in shown)
    return {
        "status": "degraded" if degraded else "healthy",
        "database": tasker.database.dialect,
        "checked_at": now,
        "counts": asdict(counts),
        "workers": [{**w, "namespaces": list(w["namespaces"] or [])} for w in shown],
    }


def worker_state(worker: Row, now: datetime, stale_after: timedelta) -> str:
    if worker["stopped_at"] is not None:
        return "stopped"
    return "stale" if now - worker["last_heartbeat_at"] > stale_after else "active"


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 503),
    },
)
def metrics(
    request: Request, tasker: TaskerDep, who: Annotated[Principal, Depends(metrics_principal)]
) -> Response:
    now = tasker.now()
    counts = tasker.read(lambda c: readiness_sql.system_health_counts(c, now))
    gauges: HealthMetrics = request.app.state.metrics
    # The database gauges, then this process's own counters (tasks created through it...).
    body = gauges.render(counts) + generate_latest(tasker.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE)
