"""``Tasker``: the application object the CLI, the API, workers and tests share.

Dependencies come in through the constructor (database, template registry, clock,
settings); nothing here is global.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from tasker.clock import Clock, SystemClock
from tasker.config import Settings
from tasker.definitions import (
    ChildWorkflow,
    HandlerCoverage,
    TemplateDefinition,
    TemplateRegistry,
    child_templates,
    parse_template,
)
from tasker.engine import (
    attempts,
    batch,
    children,
    coverage,
    creation,
    flow,
    recovery,
    retention,
    signals,
)
from tasker.engine import schedules as scheduling
from tasker.engine.batch import BatchItemResult
from tasker.engine.creation import TaskRequest
from tasker.exceptions import (
    DatabaseUnavailable,
    DuplicateKey,
    NotFound,
    TemplateError,
    TemplateNotFound,
    TransientStoreError,
    ValidationError,
)
from tasker.payloads import check_storable, check_text
from tasker.serialization import event_json, task_json, transition_json
from tasker.store import migrations, open_database
from tasker.store import readiness as readiness_sql
from tasker.store.database import Connection, Database, Row

if TYPE_CHECKING:
    from tasker.observability.metrics import TaskerMetrics

log = logging.getLogger("tasker")
T = TypeVar("T")


class Tasker:
    def __init__(
        self,
        database: Database,
        registry: TemplateRegistry | None = None,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
        rand: random.Random | None = None,
    ):
        self.database = database
        self.registry = registry or TemplateRegistry()
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or Settings(database_url=database.url)
        self.rand = rand
        # Template definitions this process has stored, with their row ids: creating a
        # task then need not re-register (and lock) the template row every time.
        self._stored_templates: dict[str, tuple[TemplateDefinition, int]] = {}
        self._metrics: TaskerMetrics | None = None
        self._metrics_lock = threading.Lock()

    @property
    def metrics(self) -> TaskerMetrics:
        """This process's Prometheus metrics, made when first touched (once, whichever
        thread asks first): the CLI's read commands, which count nothing, then never import
        prometheus_client."""
        if self._metrics is None:
            from tasker.observability.metrics import TaskerMetrics

            with self._metrics_lock:
                if self._metrics is None:
                    self._metrics = TaskerMetrics()
        return self._metrics

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock | None = None, check_handlers: bool = True
    ) -> Tasker:
        """A Tasker on the configured database and templates. ``check_handlers=False``
        loads templates without importing their handlers (a worker serves those that
        import, see ``TemplateRegistry.load_handlers``)."""
        registry = TemplateRegistry.from_paths(settings.templates, check_handlers=check_handlers)
        return cls(open_database(settings.database_url), registry, clock=clock, settings=settings)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = False,
        registry: TemplateRegistry | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> Tasker:
        """A Tasker on the database ``url`` names, its schema brought up to date first
        when ``migrate``. Close it (or use it as a context manager) when done."""
        database = open_database(url)
        try:
            if migrate:
                migrations.upgrade(database)
        except BaseException:
            database.close()
            raise
        return cls(database, registry, clock=clock, settings=settings or Settings(database_url=url))

    def migrate(self) -> list[migrations.MigrationStatus]:
        """Apply every pending migration; returns those applied (none: up to date)."""
        return migrations.upgrade(self.database)

    def migration_status(self) -> list[migrations.MigrationStatus]:
        """Every migration, applied or pending."""
        return migrations.migration_status(self.database)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Tasker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------

    def write(self, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in a write transaction, again if it lost a race (deadlock, busy)."""
        for attempt in range(1, attempts + 1):
            try:
                with self.database.transaction() as conn:
                    return work(conn)
            except TransientStoreError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Connection], T]) -> T:
        with self.database.read() as conn:
            return work(conn)

    def now(self) -> datetime:
        return self.clock.now()

    # -- templates ------------------------------------------------------------------

    def template(
        self, name: str, namespace: str = "default", version: str | None = None
    ) -> TemplateDefinition:
        """A template from this process's registry, else one a worker stored."""
        try:
            return self.registry.get(name, namespace, version)
        except TemplateNotFound:
            stored = [
                # Its handlers may live only in the workers' processes: not imported here.
                parse_template(row["definition"], source="database", check_handlers=False)
                for row in self.stored_templates()
                if row["namespace"] == namespace
                and row["name"] == name
                and (version is None or row["version"] == version)
            ]
            if not stored:
                raise
            return max(stored, key=TemplateDefinition.version_tuple)

    def register_templates(self) -> int:
        """Store every registered template's definition (so other processes can see it)."""
        templates = self.registry.all()
        now = self.now()

        def work(conn: Connection) -> int:
            for template in templates:
                creation.register_template(conn, template, now)
            return len(templates)

        return self.write(work)

    # -- tasks ----------------------------------------------------------------------

    def create_task(self, request: TaskRequest, *, actor: str | None = None) -> tuple[int, bool]:
        """Create a task; returns ``(task_id, created)``. With an idempotency key, the same
        request returns the existing task (created False) and a different one raises
        IdempotencyConflict. Nothing is written when the request is invalid."""
        template = self.template(request.name, request.namespace, request.version)
        creation.check_request(template, request)
        # Every template its steps may start as child tasks, found (and checked for
        # cycles) now, and stored with the task: the engine starts children from them.
        try:
            descendants = child_templates(template, self._child_template)
        except TemplateError as exc:  # bad input for this request (422, exit 2), not a crash
            raise ValidationError(
                f"cannot create a task of {template.key}: {exc}", errors=[str(exc)]
            ) from exc
        if request.trace_context is None:
            # The OpenTelemetry API is imported when a task is made, not by every command.
            from tasker.observability.tracing import start_task_trace

            trace_context = start_task_trace(template.namespace, template.name, template.version)
            request = replace(request, trace_context=trace_context)

        stored = self._stored_templates.get(template.key)
        known_id = stored[1] if stored is not None and stored[0] == template else None

        stored_children: dict[str, tuple[TemplateDefinition, int]] = {}

        def work(conn: Connection) -> tuple[int, bool, int | None]:
            stored_children.clear()
            existing = creation.find_idempotent(conn, template, request)
            if existing is not None:
                return existing, False, None
            template_id = known_id or creation.register_template(conn, template, self.now())
            for child in descendants:
                if self._stored_templates.get(child.key, (None, 0))[0] != child:
                    stored_children[child.key] = (
                        child,
                        creation.register_template(conn, child, self.now()),
                    )
            task_id = children.create_task(
                conn,
                template,
                request,
                self.now(),
                actor,
                template_id=template_id,
                max_steps=self.settings.max_task_steps,
            )
            return task_id, True, template_id

        try:
            task_id, created, template_id = self.write(work)
        except DuplicateKey:
            # Another request with the same key won the race: answer as if it came first.
            task_id, created, template_id = self.write(work)
        if template_id is not None:  # committed: later creations may skip registering
            self._stored_templates[template.key] = (template, template_id)
            self._stored_templates.update(stored_children)
        if created:
            self.metrics.tasks_created.inc()
        return task_id, created

    def create_tasks(
        self, requests: Sequence[TaskRequest], *, actor: str | None = None
    ) -> list[BatchItemResult]:
        """Create many tasks, each item on its own (``engine/batch.py``): one result per
        request, in order, with the task (``created`` False when its idempotency key had
        made it already) or an error naming the item and the problem. A bad item stores
        nothing and stops no other; the good ones are written in chunks of
        ``batch.CHUNK_SIZE``, one transaction each."""
        creator = batch.BatchCreation(
            find_template=self.template,
            child_template=self._child_template,
            write=self.write,
            now=self.now,
            stored=self._stored_templates,
            actor=actor,
            max_steps=self.settings.max_task_steps,
            chunk_size=batch.CHUNK_SIZE,
        )
        return creator.run(requests, on_created=self.metrics.tasks_created.inc)

    def _child_template(self, ref: ChildWorkflow) -> TemplateDefinition:
        return self.template(ref.name, ref.namespace, ref.version)

    def open_descendants(self, task_id: int) -> list[int]:
        """The ids of the tasks below ``task_id`` (its child tasks, theirs...) that are
        not final yet, oldest first."""
        rows = self.read(lambda c: c.fetch_all("open_descendants", task_id=task_id))
        return [int(row["id"]) for row in rows]

    def children_of(self, task_id: int) -> list[Row]:
        """The child tasks ``task_id`` started (id, status, parent_step_id), oldest first."""
        return self.read(lambda c: children.children_of(c, task_id))

    def get_task(self, task_id: int, *, with_steps: bool = True) -> dict[str, Any]:
        def work(conn: Connection) -> dict[str, Any]:
            task = conn.fetch_one("get_task", task_id=task_id)
            if task is None:
                raise NotFound(f"task {task_id} does not exist")
            steps = conn.fetch_all("task_step_views", task_ids=[task_id]) if with_steps else None
            return task_json(task, steps)

        return self.read(work)

    def list_tasks(
        self,
        *,
        status: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        rows = self.read(
            lambda c: c.fetch_all(
                "list_tasks",
                status=status,
                namespace=namespace,
                name=name,
                before_id=before_id,
                limit=limit,
            )
        )
        return [task_json(row, None) for row in rows]

    def task_status(self, task_id: int) -> str:
        row = self.read(lambda c: c.fetch_one("get_task", task_id=task_id))
        if row is None:
            raise NotFound(f"task {task_id} does not exist")
        status: str = row["status"]
        return status

    # -- operator actions -----------------------------------------------------------

    def cancel_task(
        self, task_id: int, *, actor: str | None = None, reason: str | None = None
    ) -> bool:
        return self.write(
            lambda c: recovery.cancel_task(c, task_id, self.now(), actor=actor, reason=reason)
        )

    def retry_task(
        self, task_id: int, *, actor: str | None = None, reason: str | None = None
    ) -> list[str]:
        return self.write(
            lambda c: recovery.retry_task(c, task_id, self.now(), actor=actor, reason=reason)
        )

    def retry_step(
        self, task_id: int, step: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        self.write(
            lambda c: recovery.retry_step(c, task_id, step, self.now(), actor=actor, reason=reason)
        )

    def resolve_step(
        self,
        task_id: int,
        step: str,
        *,
        reason: str,
        actor: str | None = None,
        results: Any = None,
        branch: tuple[str, ...] | None = None,
    ) -> None:
        """Declare a step done by hand; a branching step needs ``branch``, the children
        that run (the others are skipped)."""
        check_storable(results, "results", max_bytes=self.settings.max_result_bytes)
        self.write(
            lambda c: recovery.resolve_step(
                c,
                task_id,
                step,
                self.now(),
                actor=actor,
                reason=reason,
                results=results,
                branch=branch,
            )
        )

    def signal_task(
        self, task_id: int, name: str, payload: Any = None, *, actor: str | None = None
    ) -> signals.SignalReceipt:
        """Deliver signal ``name`` to a task (``wait_for``). The same signal again with the
        same payload is a no-op (``created`` False); with another, SignalConflict."""
        check_storable(payload, "signal payload", max_bytes=self.settings.max_result_bytes)
        return self.write(
            lambda c: signals.deliver_signal(c, task_id, name, payload, self.now(), actor=actor)
        )

    def ancestor_results(self, step_id: int, name: str) -> Any:
        """The results of the step ``name`` upstream of ``step_id`` (``step.ancestor``)."""
        row = self.read(lambda c: c.fetch_one("ancestor_results", step_id=step_id, name=name))
        if row is None:
            raise KeyError(f"no step {name!r} is upstream of this step")
        return row["results"]

    def all_ancestor_results(self, step_id: int) -> dict[str, Any]:
        rows = self.read(lambda c: c.fetch_all("all_ancestor_results", step_id=step_id))
        return {row["name"]: row["results"] for row in rows}

    # -- schedules ------------------------------------------------------------------

    def sync_schedules(self) -> int:
        """Store the schedules this process's templates declare (a worker does at start)."""
        declared = scheduling.declared(self.registry.all())
        if not declared:
            return 0
        return self.write(lambda c: scheduling.sync_schedules(c, declared, self.now()))

    def fire_schedules(self) -> list[scheduling.Fired]:
        """Fire the due ticks of the schedules this process's templates declare, unless
        another process is firing (workers call it every second)."""
        declared = scheduling.declared(self.registry.all())
        if not declared:
            return []
        max_steps = self.settings.max_task_steps
        return self.write(
            lambda c: scheduling.fire_due_schedules(c, declared, self.now(), max_steps=max_steps)
        )

    def schedules(self) -> list[dict[str, Any]]:
        """Every stored schedule as JSON, with its next fire time."""
        rows = self.read(lambda c: c.fetch_all("list_schedules"))
        return [scheduling.schedule_json(row) for row in rows]

    def set_schedule_paused(
        self,
        namespace: str,
        template: str,
        schedule: str,
        *,
        paused: bool,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Pause or resume a stored schedule, with its history row and event."""
        if reason is not None:
            check_text(reason, "reason")
        row = self.write(
            lambda c: scheduling.set_paused(
                c, namespace, template, schedule, paused=paused, now=self.now(),
                actor=actor, reason=reason,
            )
        )  # fmt: skip
        return scheduling.schedule_json(row)

    # -- execution (used by workers and the in-process runner) ----------------------

    def claim(
        self,
        worker_id: str,
        limit: int,
        namespaces: list[str] | None = None,
        lease_seconds: float | None = None,
        handlers: list[str] | None = None,
        task_id: int | None = None,
    ) -> list[attempts.ClaimedStep]:
        """Claim up to ``limit`` claimable steps (of ``handlers`` only, when given)."""
        lease = lease_seconds or self.settings.lease_seconds
        claimed = self.write(
            lambda c: attempts.claim_steps(
                c,
                worker_id=worker_id,
                limit=limit,
                lease_seconds=lease,
                namespaces=namespaces,
                now=self.now(),
                task_id=task_id,
                handlers=handlers,
            )
        )
        self.metrics.steps_started.inc(len(claimed))
        for step in claimed:
            if step.queued_seconds is not None:
                self.metrics.claim_latency.observe(step.queued_seconds)
        return claimed

    def record(
        self, outcomes: list[attempts.Outcome], actor: str | None = None
    ) -> attempts.OutcomeReport:
        """Store attempt outcomes in one transaction. If the database refuses the batch
        (not for being unreachable: that raises), each outcome is stored on its own, and
        one still refused fails its step for good, saying why: one bad row never holds
        up the others, nor comes back to the next worker."""
        try:
            report = self._record(outcomes, actor)
        except (DatabaseUnavailable, TransientStoreError):
            raise
        except Exception as exc:
            if len(outcomes) == 1:
                report = self._record_refused(outcomes[0], actor, exc)
            else:
                report = attempts.OutcomeReport()
                for outcome in outcomes:
                    try:
                        one = self._record([outcome], actor)
                    except (DatabaseUnavailable, TransientStoreError):
                        raise
                    except Exception as single_exc:
                        one = self._record_refused(outcome, actor, single_exc)
                    report.merge(one)
        self._count(report)
        self._unpark(report.freed)
        for outcome in outcomes:
            if outcome.duration_seconds is not None:
                self.metrics.step_duration.observe(outcome.duration_seconds)
        return report

    def _unpark(self, keys: set[flow.FreedKey]) -> None:
        """After a commit that gave slots back: steps parked for them become claimable. The
        outcomes are stored already, so a failure here is left to the reaper's sweep."""
        if not keys:
            return
        try:
            self.write(lambda c: flow.unpark(c, keys, self.now()))
        except Exception as exc:  # the sweep unparks them later
            log.warning("could not unpark steps waiting for %d keys: %s", len(keys), exc)

    def _record(
        self, outcomes: list[attempts.Outcome], actor: str | None
    ) -> attempts.OutcomeReport:
        return self.write(
            lambda c: attempts.record_outcomes(
                c, outcomes, now=self.now(), actor=actor, rand=self.rand
            )
        )

    def _record_refused(
        self, outcome: attempts.Outcome, actor: str | None, exc: Exception
    ) -> attempts.OutcomeReport:
        log.error("step %s: the database refused its outcome: %s", outcome.step_id, exc)
        return self._record([attempts.refused(outcome, exc)], actor)

    def reap_expired_leases(self, limit: int = 100) -> attempts.OutcomeReport:
        report = self.write(
            lambda c: attempts.reap_expired_leases(c, now=self.now(), limit=limit, rand=self.rand)
        )
        # Waits for a signal that timed out are the reaper's too: no worker holds them.
        report.finalized.update(
            self.write(lambda c: signals.fail_expired_waits(c, self.now(), limit=limit))
        )
        self._unpark(report.freed)
        # Steps waiting for slots that were given back without an unpark (a recorder that
        # died in between, a manual change) get them now.
        self.write(lambda c: flow.sweep(c, self.now()))
        self._count(report)
        self.metrics.leases_expired.inc(len(report.recorded))
        return report

    def _count(self, report: attempts.OutcomeReport) -> None:
        results = list(report.step_results.values())
        m = self.metrics
        m.steps_completed.inc(results.count("complete"))
        m.steps_retried.inc(results.count("retry"))
        m.steps_failed.inc(results.count("failed"))
        statuses = list(report.finalized.values())
        m.tasks_completed.inc(statuses.count("complete"))
        m.tasks_failed.inc(statuses.count("error"))
        for seconds in report.task_durations.values():
            m.task_duration.observe(seconds)

    def next_claimable_at(
        self,
        namespaces: list[str] | None = None,
        handlers: list[str] | None = None,
        task_id: int | None = None,
    ) -> datetime | None:
        row = self.read(
            lambda c: c.fetch_one(
                "next_claimable_at", namespaces=namespaces, handlers=handlers, task_id=task_id
            )
        )
        return row["claimable_at"] if row else None

    def has_live_work(
        self,
        namespaces: list[str] | None = None,
        handlers: list[str] | None = None,
        task_id: int | None = None,
    ) -> bool:
        """Whether a step is running, or claimable (with one of ``handlers``, when given)."""
        row = self.read(
            lambda c: c.fetch_one(
                "live_work", namespaces=namespaces, handlers=handlers, task_id=task_id
            )
        )
        return bool(row and row["n"])

    # -- workers --------------------------------------------------------------------

    def register_worker(
        self,
        worker_id: str,
        *,
        hostname: str,
        pid: int,
        namespaces: list[str],
        concurrency: int,
        lease_seconds: float,
        handlers: HandlerCoverage,
    ) -> None:
        """Record a starting worker with the handlers it serves and its lease."""
        self.write(
            lambda c: coverage.register_worker(
                c,
                worker_id=worker_id,
                hostname=hostname,
                pid=pid,
                namespaces=namespaces,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                coverage=handlers,
                now=self.now(),
            )
        )

    def heartbeat(
        self, worker_id: str, lease_seconds: float, *, abandoned_threads: int = 0
    ) -> list[int]:
        """The worker is alive: its leases run ``lease_seconds`` from now, and it has
        ``abandoned_threads`` handler threads still running given-up steps. Returns the
        ids of the steps it still holds."""
        return self.write(
            lambda c: attempts.extend_leases(
                c,
                worker_id=worker_id,
                lease_seconds=lease_seconds,
                now=self.now(),
                abandoned_threads=abandoned_threads,
            )
        )

    def stop_worker(self, worker_id: str, *, abandoned_threads: int = 0) -> None:
        """Record that the worker stopped cleanly, leaving ``abandoned_threads`` behind."""
        self.write(
            lambda c: c.execute(
                "stop_worker", id=worker_id, now=self.now(), abandoned_threads=abandoned_threads
            )
        )

    def release_worker_steps(self, worker_id: str) -> attempts.OutcomeReport:
        """Return every step the stopping worker still holds to the queue, its attempt
        given back (``Outcome.released``): interrupted by the stop, not failed."""
        held = self.read(lambda c: c.fetch_all("held_steps", worker_id=worker_id))
        message = (
            f"worker {worker_id} stopped before the step finished; released for another "
            "attempt (this one is not counted)"
        )
        error = {"class": "WorkerShutdown", "message": message, "traceback": None}
        outcomes = [
            attempts.Outcome(r["id"], r["task_id"], r["claim_token"], error=error, released=True)
            for r in held
        ]
        return self.record(outcomes, worker_id) if outcomes else attempts.OutcomeReport()

    def workers(self) -> list[Row]:
        """Every registered worker, stopped and silent ones included, newest first."""
        return self.read(lambda c: c.fetch_all("list_workers"))

    def live_workers(self) -> list[coverage.LiveWorker]:
        """Workers not stopped whose last heartbeat is within their lease."""
        return self.read(
            lambda c: coverage.live_workers(c, self.now(), self.settings.lease_seconds)
        )

    # -- inspection -----------------------------------------------------------------

    def readiness(self, task_id: int) -> list[readiness_sql.StepReadiness]:
        """The readiness rows of the task's steps (SQL), with ``no_worker_for_handler`` on
        ready steps that no live worker serves while some worker is live (``coverage``)."""
        self.task_status(task_id)
        now = self.now()

        def work(conn: Connection) -> list[readiness_sql.StepReadiness]:
            rows = readiness_sql.step_readiness(conn, task_id, now)
            return coverage.with_worker_coverage(conn, rows, now, self.settings.lease_seconds)

        return self.read(work)

    def health_counts(self) -> readiness_sql.SystemHealthCounts:
        """``get_system_health_counts()``: tasks and steps by state, the queue, leases."""
        now = self.now()
        return self.read(lambda c: readiness_sql.system_health_counts(c, now))

    def analytics(self, since: datetime) -> readiness_sql.AnalyticsMetrics:
        """``get_analytics_metrics(since)``: counts, rates and durations since then."""
        now = self.now()
        return self.read(lambda c: readiness_sql.analytics_metrics(c, since, now))

    def step_timeline(
        self, since: datetime, bucket: timedelta, until: datetime | None = None
    ) -> list[readiness_sql.TimelineBucket]:
        """Steps completed and failed, and duration percentiles, per ``bucket`` from
        ``since`` to ``until`` (default: now)."""
        end = self.now() if until is None else until
        return self.read(lambda c: readiness_sql.step_timeline(c, since, end, bucket))

    def slowest(
        self, since: datetime, limit: int
    ) -> tuple[list[readiness_sql.SlowStep], list[readiness_sql.SlowTask]]:
        """The slowest steps and tasks finished since ``since``, at most ``limit`` each."""

        def work(
            conn: Connection,
        ) -> tuple[list[readiness_sql.SlowStep], list[readiness_sql.SlowTask]]:
            return (
                readiness_sql.slowest_steps(conn, since, limit),
                readiness_sql.slowest_tasks(conn, since, limit),
            )

        return self.read(work)

    def stored_templates(self) -> list[Row]:
        """The template definitions workers registered in the database."""
        return self.read(lambda c: c.fetch_all("list_stored_templates"))

    def stored_template_definitions(self) -> list[TemplateDefinition]:
        """The stored templates, parsed without importing their handlers."""
        return [
            parse_template(row["definition"], source="database", check_handlers=False)
            for row in self.stored_templates()
        ]

    def execution_context(self, task_id: int) -> readiness_sql.TaskExecutionContext:
        found = self.read(lambda c: readiness_sql.execution_context(c, task_id, self.now()))
        if found is None:
            raise NotFound(f"task {task_id} does not exist")
        return found

    def flow_waits(self, task_id: int) -> list[dict[str, Any]]:
        """What the task's steps held back by a concurrency or rate limit wait for."""
        return self.read(lambda c: flow.waits(c, task_id))

    def dependency_levels(self, task_id: int) -> dict[int, int]:
        self.task_status(task_id)
        return self.read(lambda c: readiness_sql.dependency_levels(c, task_id))

    def transitions(self, task_id: int) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[dict[str, Any]]:
            if conn.fetch_one("get_task", task_id=task_id) is None:
                raise NotFound(f"task {task_id} does not exist")
            rows = conn.fetch_all("task_transitions", task_id=task_id)
            rows += conn.fetch_all("step_transitions_of_task", task_id=task_id)
            return [transition_json(r) for r in rows]

        return self.read(work)

    def transition_page(
        self, task_id: int, *, limit: int, after: tuple[str, int] | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
        """Up to ``limit`` rows of :meth:`transitions`, in its order (the task's own rows by
        sort key, then its steps' rows by id), after the position ``after``: ``("task",
        SORT_KEY)`` or ``("step", ID)``, None for the start. Returns the rows and the
        position the next page starts after (None: nothing follows). Keyset pagination:
        each page costs the same however deep it is."""
        entity, position = after or ("task", 0)

        def work(conn: Connection) -> tuple[list[Row], tuple[str, int] | None]:
            if conn.fetch_one("get_task", task_id=task_id) is None:
                raise NotFound(f"task {task_id} does not exist")
            rows: list[Row] = []
            step_after = position
            if entity == "task":
                rows = conn.fetch_all(
                    "task_transitions_page",
                    task_id=task_id,
                    after_sort_key=position,
                    limit=limit + 1,
                )
                if len(rows) > limit:
                    return rows[:limit], ("task", rows[limit - 1]["sort_key"])
                step_after = 0
            room = limit - len(rows)
            steps = conn.fetch_all(
                "step_transitions_of_task_page",
                task_id=task_id,
                after_id=step_after,
                limit=room + 1,
            )
            if len(steps) <= room:
                return rows + steps, None
            steps = steps[:room]
            return rows + steps, ("step", steps[-1]["id"] if steps else step_after)

        rows, following = self.read(work)
        return [transition_json(r) for r in rows], following

    # -- retention ------------------------------------------------------------------

    def prune_events(
        self, older_than: timedelta, *, batch_size: int = 1000, force: bool = False
    ) -> retention.EventPrune:
        """Delete events older than ``older_than``, one short transaction per batch, but
        none that an active durable consumer has not read yet, unless ``force``. Says how
        many were deleted, and how many were kept for which consumer (``retention``)."""
        now = self.now()
        before = now - older_than
        total = 0
        while True:
            deleted = self.write(
                lambda c: retention.prune_events_batch(
                    c, before=before, now=now, limit=batch_size, force=force
                )
            )
            total += deleted
            if deleted < batch_size:
                break
        if force:
            return retention.EventPrune(total)
        kept = self.read(lambda c: retention.kept_for_consumers(c, before=before, now=now))
        return replace(kept, deleted=total)

    def prune_tasks(self, finished_before: datetime, *, batch_size: int = 200) -> int:
        """Delete finished tasks completed before a time, with their steps, history and
        events, one short transaction per batch."""

        def batch(conn: Connection) -> int:
            rows = conn.fetch_all("finished_tasks_before", before=finished_before, limit=batch_size)
            ids = [r["id"] for r in rows]
            if ids:
                conn.execute("delete_task_events", task_ids=ids)
                conn.execute("delete_tasks", task_ids=ids)
            return len(ids)

        total = 0
        while True:
            deleted = self.write(batch)
            total += deleted
            if deleted < batch_size:
                return total

    def events(
        self, after_id: int = 0, *, task_id: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        rows = self.read(
            lambda c: c.fetch_all("events_after", after_id=after_id, task_id=task_id, limit=limit)
        )
        return [event_json(r) for r in rows]

    # -- the dashboard's reads ------------------------------------------------------

    def event_page(
        self,
        after_id: int = 0,
        *,
        task_id: int | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events after the cursor ``after_id`` (an event id), oldest first, of one task
        and one event name when given. Ids follow commit order, so the last id returned
        is a cursor that never skips an event (docs/architecture.md, Events)."""
        rows = self.read(
            lambda c: c.fetch_all(
                "events_page", after_id=after_id, task_id=task_id, name=name, limit=limit
            )
        )
        return [event_json(r) for r in rows]

    def task_counts(
        self, *, namespace: str | None = None, name: str | None = None
    ) -> dict[str, int]:
        """How many tasks are in each status (only statuses that have some), of one
        namespace and template name when given."""
        rows = self.read(
            lambda c: c.fetch_all("count_tasks_by_status", namespace=namespace, name=name)
        )
        return {row["status"]: int(row["n"]) for row in rows}

    def running_steps(self, limit: int = 1000) -> list[Row]:
        """Steps running now with the worker holding each (``claimed_by``), at most
        ``limit``."""
        return self.read(lambda c: c.fetch_all("running_steps", limit=limit))

    def last_event_id(self) -> int:
        """The newest event's id (0: none yet): a cursor from which to follow the log."""
        row = self.read(lambda c: c.fetch_one("last_event_id"))
        return int(row["id"]) if row else 0

    def task_by_idempotency_key(self, key: str) -> int | None:
        """The id of the task created with this idempotency key, if any."""
        row = self.read(lambda c: c.fetch_one("get_task_by_idempotency_key", key=key))
        return None if row is None else int(row["id"])
