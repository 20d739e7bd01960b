"""Prometheus metrics of one process, in its own registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900)


class TaskerMetrics:
    """Counters and histograms a worker (or API process) updates as it works."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tasks_created = Counter("tasker_tasks_created", "Tasks created.", registry=r)
        self.tasks_completed = Counter("tasker_tasks_completed", "Tasks completed.", registry=r)
        self.tasks_failed = Counter("tasker_tasks_failed", "Tasks that ended in error.", registry=r)
        self.steps_started = Counter("tasker_steps_started", "Step attempts started.", registry=r)
        self.steps_completed = Counter("tasker_steps_completed", "Steps completed.", registry=r)
        self.steps_failed = Counter(
            "tasker_steps_failed", "Step attempts failed with no retry left.", registry=r
        )
        self.steps_retried = Counter(
            "tasker_steps_retried", "Step attempts failed with a retry scheduled.", registry=r
        )
        self.leases_expired = Counter(
            "tasker_leases_expired", "Step leases that expired (worker lost).", registry=r
        )
        self.abandoned_threads = Gauge(
            "tasker_abandoned_threads",
            "Handler threads still running a step given up at its timeout.",
            registry=r,
        )
        self.step_duration = Histogram(
            "tasker_step_duration_seconds",
            "Time a handler ran, per attempt.",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=r,
        )
        self.task_duration = Histogram(
            "tasker_task_duration_seconds",
            "Creation to final state.",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=r,
        )
        self.claim_latency = Histogram(
            "tasker_claim_latency_seconds",
            "From a step becoming ready to its claim.",
            buckets=DURATION_BUCKETS_SECONDS,
            registry=r,
        )
