"""``GET /metrics``: Prometheus gauges from ``get_system_health_counts`` (its
``active_workers`` replaced by the live workers, see ``routes_health.health_counts``).

Each app owns its :class:`~prometheus_client.CollectorRegistry` (never the global default
one), so two apps in one process, as in tests, do not share or collide on metrics.
The gauges are set from one fresh health-count query per scrape.
"""

from __future__ import annotations

import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from tasker.store.readiness import SystemHealthCounts

__all__ = ["CONTENT_TYPE", "HealthMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
TASK_STATUSES = ("pending", "in_progress", "complete", "error", "cancelled", "resolved_manually")
STEP_STATUSES = ("pending", "in_progress", "complete", "error")


class HealthMetrics:
    """The gauges of one app and the registry that holds them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._tasks = Gauge("tasker_tasks", "Tasks by status.", ["status"], registry=r)
        self._steps = Gauge("tasker_steps", "Steps by status.", ["status"], registry=r)
        self._retrying = Gauge(
            "tasker_steps_retrying", "Failed steps that will be retried.", registry=r
        )
        self._exhausted = Gauge(
            "tasker_steps_exhausted", "Failed steps with no attempt left.", registry=r
        )
        self._claimable = Gauge(
            "tasker_steps_claimable", "Steps a worker may claim now (the queue).", registry=r
        )
        self._expired = Gauge(
            "tasker_expired_leases", "Running steps whose lease has expired.", registry=r
        )
        self._workers = Gauge(
            "tasker_active_workers",
            "Workers whose last heartbeat is within their lease.",
            registry=r,
        )
        self._lock = threading.Lock()  # one scrape sets and reads the gauges at a time

    def render(self, counts: SystemHealthCounts) -> bytes:
        """Set every gauge from ``counts`` and return the registry in the text format."""
        with self._lock:
            for status in TASK_STATUSES:
                self._tasks.labels(status=status).set(getattr(counts, f"{status}_tasks"))
            for status in STEP_STATUSES:
                self._steps.labels(status=status).set(getattr(counts, f"{status}_steps"))
            self._retrying.set(counts.retrying_steps)
            self._exhausted.set(counts.exhausted_steps)
            self._claimable.set(counts.claimable_steps)
            self._expired.set(counts.expired_leases)
            self._workers.set(counts.active_workers)
            return generate_latest(self.registry)
