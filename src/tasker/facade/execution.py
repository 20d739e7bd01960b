"""Execution: what workers (and the in-process runner) call. Claiming steps, recording
their outcomes, reaping expired leases, and the workers' own rows."""

from __future__ import annotations

import logging
from datetime import datetime

from tasker.definitions import HandlerCoverage
from tasker.engine import attempts, coverage, flow, signals
from tasker.exceptions import DatabaseUnavailable, SchemaNotReady, TransientStoreError
from tasker.facade.core import Core
from tasker.store.database import Row

log = logging.getLogger("tasker")


class Execution(Core):
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
        (``attempts.UNSTORABLE_ERRORS``; not for being unreachable or busy: that raises),
        each outcome is stored on its own, and one still refused fails its step for good,
        saying why: one bad row never holds up the others, nor comes back to the next
        worker. Any other exception is a bug, not the data's fault: it propagates and no
        step is failed for it."""
        waited_for = (DatabaseUnavailable, TransientStoreError, SchemaNotReady)
        try:
            report = self._record(outcomes, actor)
        except waited_for:
            raise
        except attempts.UNSTORABLE_ERRORS as exc:
            if len(outcomes) == 1:
                report = self._record_refused(outcomes[0], actor, exc)
            else:
                report = attempts.OutcomeReport()
                for outcome in outcomes:
                    try:
                        one = self._record([outcome], actor)
                    except waited_for:
                        raise
                    except attempts.UNSTORABLE_ERRORS as single_exc:
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

    def running_steps(self, limit: int = 1000) -> list[Row]:
        """Steps running now with the worker holding each (``claimed_by``), at most
        ``limit``."""
        return self.read(lambda c: c.fetch_all("running_steps", limit=limit))
