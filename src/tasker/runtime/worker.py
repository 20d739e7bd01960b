"""The worker: claims steps across all tasks, runs them, records outcomes.

One asyncio loop per process. Database calls run on a small thread pool so the loop
never blocks; sync handlers run on a pool of ``concurrency`` threads. Three
background loops: outcome flushing (batched), heartbeats, and the lease reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from prometheus_client import start_http_server

from tasker.definitions import HandlerCoverage
from tasker.engine.attempts import ClaimedStep, Outcome
from tasker.events.bus import EventBus
from tasker.events.consumer import EventDispatcher
from tasker.exceptions import DatabaseUnavailable, TemplateError, TransientStoreError
from tasker.facade import Tasker
from tasker.runtime.executor import execute
from tasker.runtime.failures import error_info
from tasker.runtime.handler_processes import HandlerProcesses
from tasker.runtime.handler_threads import HandlerThreads
from tasker.runtime.sizing import CEILING as SIZING_CEILING
from tasker.runtime.sizing import FLOOR as SIZING_FLOOR
from tasker.runtime.sizing import Sizing

log = logging.getLogger("tasker.worker")
T = TypeVar("T")
P = ParamSpec("P")

FLUSH_RETRY_SECONDS = 0.5  # first pause before recording again after the database failed
FLUSH_RETRY_MAX_SECONDS = 5.0
POOLS = ("thread", "process")
STOP_FLUSH_SECONDS = 5.0  # on stop, how long recording may keep failing before giving up
SCHEDULE_SECONDS = 1.0  # how often a worker whose templates declare schedules fires them


@dataclass(frozen=True)
class WorkerOptions:
    """
    concurrency: steps in flight at once (default: sized by the worker from its handlers'
        durations, about half a second of work between 10 and 200 steps, see
        ``tasker.runtime.sizing``; 10 with ``pool="process"``, a child process per slot).
    namespaces: only claim steps of these namespaces (default: all).
    burst: exit once no work is left that could ever run without outside action.
    lease_seconds: claim lifetime without a heartbeat (default: the settings', 30 s);
        heartbeats go out every third of it.
    poll_interval_seconds: longest idle sleep between claim attempts (default: 1.0 s when
        the database wakes workers earlier: PostgreSQL's NOTIFY, SQLite's change listener;
        0.1 s behind PgBouncer without a direct URL to listen on).
    grace_seconds: on stop, how long in-flight steps may finish before being released.
    batch_size: most steps claimed in one round trip (default: the concurrency, up to 100).
    metrics_port: serve Prometheus metrics on this port (default: off).
    pool: where sync and async handlers run: ``thread`` (default; a hung sync handler's
        thread is abandoned at its timeout) or ``process`` (each running step in a child
        process, killed at the timeout; costs a pipe round trip per step).
    """

    concurrency: int | None = None
    namespaces: tuple[str, ...] = ()
    burst: bool = False
    lease_seconds: float | None = None
    poll_interval_seconds: float | None = None
    grace_seconds: float = 30.0
    batch_size: int | None = None
    metrics_port: int | None = None
    pool: str = "thread"

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        Sizing(self.concurrency, self.batch_size)  # refuses a size below 1

    def sizing(self) -> Sizing:
        """The rule for this worker's steps in flight and claim size."""
        fixed = self.concurrency
        if fixed is None and self.pool == "process":
            fixed = SIZING_FLOOR  # a child process per slot: a fleet of 200 is no default
        return Sizing(fixed, self.batch_size)


class Worker:
    """Runs steps until stopped (or, in burst mode, until no work is left).

    ``bus``: subscribers to deliver the event log to, from this process (see
    ``EventDispatcher``: one process at a time delivers, at least once, in order).
    """

    def __init__(
        self,
        tasker: Tasker,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
        bus: EventBus | None = None,
    ):
        self.tasker = tasker
        self.bus = bus
        self.options = options or WorkerOptions()
        self.lease_seconds = self.options.lease_seconds or tasker.settings.lease_seconds
        self.worker_id = worker_id or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.namespaces = list(self.options.namespaces) or None
        notifies = getattr(tasker.database, "supports_notify", False)
        self.poll_seconds: float = self.options.poll_interval_seconds or (1.0 if notifies else 0.1)
        self.executed = 0
        self.sizing = self.options.sizing()
        self._stopping = False
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._outcomes: list[Outcome] = []
        self._db_pool = ThreadPoolExecutor(4, thread_name_prefix="tasker-db")
        self._handler_pool: HandlerThreads | HandlerProcesses = (
            HandlerProcesses() if self.options.pool == "process" else HandlerThreads("tasker-step")
        )
        self._abandoned_logged = 0
        tasker.metrics.abandoned_threads.set_function(lambda: self._handler_pool.abandoned)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._flush_wanted: asyncio.Event | None = None
        self._flushing = False
        # Whether the last claim left work behind (it filled its batch, or could not claim
        # at all for want of a free slot): only then does a freed slot claim at once.
        self._more_waiting = True
        self._stop_deadline: float | None = None  # loop time; set once stopping

    @property
    def abandoned_threads(self) -> int:
        """Handler threads still running steps given up at their timeout."""
        return self._handler_pool.abandoned

    @property
    def killed_processes(self) -> int:
        """Handler processes killed because their step timed out (``--pool process``)."""
        pool = self._handler_pool
        return pool.killed if isinstance(pool, HandlerProcesses) else 0

    # -- lifecycle ------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; in-flight steps get ``grace_seconds`` to finish. Thread-safe."""
        self._stopping = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        await self._db(self._register)
        fires_schedules = await self._db(self.tasker.sync_schedules) > 0
        background = [
            asyncio.create_task(self._flush_loop(), name="flush"),
            asyncio.create_task(self._every(self.lease_seconds / 3, self._heartbeat), name="hb"),
            asyncio.create_task(self._every(self.lease_seconds / 3, self._reap), name="reaper"),
        ]
        if fires_schedules:  # templates of this worker declare schedules: fire their ticks
            background.append(
                asyncio.create_task(
                    self._every(SCHEDULE_SECONDS, self._fire_schedules), name="schedules"
                )
            )
        delivering: asyncio.Task[None] | None = None
        if self.bus is not None and self.bus.subscriptions:
            self.dispatcher: EventDispatcher | None = EventDispatcher(self.tasker, self.bus)
            delivering = asyncio.create_task(self.dispatcher.run(), name="events")
        else:
            self.dispatcher = None
        if self.options.metrics_port is not None:
            start_http_server(self.options.metrics_port, registry=self.tasker.metrics.registry)
        listener = self._start_listener()
        try:
            await self._claim_loop()
        finally:
            await self._shutdown()
            if self.dispatcher is not None and delivering is not None:
                # Let the batch being delivered finish, so it is not delivered twice.
                self.dispatcher.stop()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(delivering, timeout=10)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self.dispatcher is not None and self.options.burst:
                await self._drain_events()
            if listener is not None:
                self._stopping = True
            try:
                await asyncio.wait_for(self._db(self._unregister), STOP_FLUSH_SECONDS)
            except Exception as exc:  # its heartbeat stops: it will be judged dead anyway
                log.warning("could not mark worker %s stopped: %s", self.worker_id, exc)
            self._db_pool.shutdown(wait=False)
            self._handler_pool.shutdown(wait=False)

    async def _drain_events(self) -> None:
        """Before a burst worker exits, deliver what its subscribers have not seen yet."""
        assert self.dispatcher is not None
        try:
            await self.dispatcher.drain()
        except Exception:
            log.exception("delivering events before exit failed")

    def run_sync(self) -> None:
        asyncio.run(self.run())

    # -- the claim loop --------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            free = self.sizing.concurrency - len(self._inflight)
            want = min(free, self.sizing.batch_size)
            claimed: list[ClaimedStep] = []
            if want > 0:
                try:
                    claimed = await self._db(
                        self.tasker.claim,
                        self.worker_id,
                        want,
                        self.namespaces,
                        self.lease_seconds,
                        self.handlers,
                    )
                except Exception:
                    log.exception("claiming failed; retrying shortly")
                    await asyncio.sleep(min(self.poll_seconds, 1.0))
                    continue
                for step in claimed:
                    self._inflight[step.step_id] = asyncio.create_task(self._run_step(step))
            self._more_waiting = want == 0 or len(claimed) == want
            if claimed and len(claimed) == want:
                continue  # more may be waiting
            if self.options.burst and await self._burst_done():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), await self._idle_seconds(free))

    async def _idle_seconds(self, free: int) -> float:
        if free <= 0:
            return self.poll_seconds
        try:
            upcoming = await self._db(self.tasker.next_claimable_at, self.namespaces, self.handlers)
        except Exception:
            return self.poll_seconds
        if upcoming is None:
            return self.poll_seconds
        delay = (upcoming - self.tasker.now()).total_seconds()
        return max(0.0, min(delay, self.poll_seconds))

    async def _burst_done(self) -> bool:
        if self._inflight or self._outcomes or self._flushing:
            return False
        return not await self._db(self.tasker.has_live_work, self.namespaces, self.handlers)

    async def _run_step(self, step: ClaimedStep) -> None:
        try:
            outcome = await self._execute(step)
            self.sizing.observe(outcome.duration_seconds)
            self._outcomes.append(outcome)
            self.executed += 1
            fields = {"task_id": step.task_id, "step": step.name, "attempt": step.attempt}
            if outcome.error is not None:
                log.warning(
                    "step %s of task %s failed (attempt %d of %d): %s: %s",
                    step.name,
                    step.task_id,
                    step.attempt,
                    step.max_attempts,
                    outcome.error["class"],
                    outcome.error["message"],
                    extra=fields,
                )
            else:
                log.debug("step %s of task %s completed", step.name, step.task_id, extra=fields)
            assert self._flush_wanted is not None
            self._flush_wanted.set()
        finally:
            self._inflight.pop(step.step_id, None)
            if self._wake is not None and self._more_waiting:
                # A slot is free and work is waiting: claim while the outcome is recorded.
                # Otherwise the queue was empty at the last claim, and what comes since
                # wakes the loop itself (a NOTIFY, this outcome's recording): a claim now
                # would find nothing and only compete with the recording for the CPU.
                self._wake.set()

    async def _execute(self, step: ClaimedStep) -> Outcome:
        try:
            return await execute(
                step,
                self.tasker.registry.resolve_handler,
                self._handler_pool,
                max_result_bytes=self.tasker.settings.max_result_bytes,
                ancestry=self.tasker,
            )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the executor never raises; if it does, the step fails
            log.exception("running step %s of task %s failed", step.name, step.task_id)
            return Outcome(step.step_id, step.task_id, step.claim_token, error=error_info(exc))

    # -- outcomes -------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        assert self._flush_wanted is not None and self._wake is not None
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush()
            self._wake.set()

    async def _flush(self) -> None:
        """Record what finished. A database that is down is waited for (when stopping,
        until ``_stop_deadline``). ``Tasker.record`` isolates rows the database refuses,
        so one bad result never holds up the others."""
        assert self._loop is not None
        pause = FLUSH_RETRY_SECONDS
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            self._flushing = True
            try:
                report = await self._db(self.tasker.record, batch, self.worker_id)
            except (DatabaseUnavailable, TransientStoreError) as exc:
                self._outcomes = batch + self._outcomes
                deadline = self._stop_deadline
                if deadline is not None and self._loop.time() + pause > deadline:
                    log.error(
                        "recording %d outcomes failed while stopping (%s); leaving them to "
                        "the lease reaper",
                        len(self._outcomes),
                        exc,
                    )
                    self._outcomes = []
                    return
                log.warning("recording %d outcomes failed (%s); retrying", len(batch), exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, FLUSH_RETRY_MAX_SECONDS)
                continue
            except Exception:  # a bug, not the data (the facade isolates bad rows)
                self._outcomes = batch + self._outcomes
                log.exception("recording %d outcomes failed; retrying", len(batch))
                if self._stop_deadline is not None:
                    self._outcomes = []  # stopping: the leases will expire, the reaper records
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, FLUSH_RETRY_MAX_SECONDS)
                continue
            finally:
                self._flushing = False
            pause = FLUSH_RETRY_SECONDS
            for step_id in report.stale:
                log.warning(
                    "step %s: result refused, the claim no longer holds "
                    "(lease expired or task changed)",
                    step_id,
                )

    # -- shutdown -------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Give running steps ``grace_seconds``, then cancel them (a sync handler's thread
        is abandoned: it cannot be stopped, and dies with the process), record what
        finished, and release what did not. Takes about grace plus
        ``STOP_FLUSH_SECONDS`` at most, whatever the handlers or the database do."""
        assert self._loop is not None
        if self._inflight:
            log.info(
                "stopping: waiting up to %.1fs for %d steps",
                self.options.grace_seconds,
                len(self._inflight),
            )
            _, pending = await asyncio.wait(
                list(self._inflight.values()), timeout=self.options.grace_seconds
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        deadline = self._stop_deadline = self._loop.time() + STOP_FLUSH_SECONDS
        await self._flush()
        while self._flushing and self._loop.time() < deadline:  # the background flush
            await asyncio.sleep(0.01)
        # Anything this worker still holds (cancelled mid-step) goes back to the queue.
        try:
            await asyncio.wait_for(
                self._db(self._release_held), max(0.1, deadline - self._loop.time())
            )
        except Exception as exc:
            log.error("releasing unfinished steps failed (%s); their leases will expire", exc)

    def _release_held(self) -> None:
        """Steps still held go back to the queue at once, their attempt given back: they
        were interrupted by this worker stopping, not failed by their handler."""
        self.tasker.release_worker_steps(self.worker_id)

    # -- background -----------------------------------------------------------------

    def _register(self) -> None:
        # Only steps whose handler imports here are claimed: a worker deployed without
        # some handlers leaves their steps to workers that have them.
        if not len(self.tasker.registry):
            # No templates of its own (no TASKER_TEMPLATES): it serves the templates
            # stored in the database whose handlers import here.
            for template in self.tasker.stored_template_definitions():
                with contextlib.suppress(TemplateError):
                    self.tasker.registry.add(template, check_handlers=False)
        served = self.tasker.registry.load_handlers(self.namespaces)
        self.handlers: list[str] = list(served.handlers)
        self._announce(served)
        self.tasker.register_worker(
            self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            namespaces=self.namespaces or [],
            # the most it may hold: a sized worker grows to the ceiling with short steps
            concurrency=self.sizing.fixed_concurrency or SIZING_CEILING,
            lease_seconds=self.lease_seconds,
            handlers=served,
        )

    def _unregister(self) -> None:
        self.tasker.stop_worker(self.worker_id, abandoned_threads=self._handler_pool.abandoned)

    def _heartbeat(self) -> None:
        abandoned = self._handler_pool.abandoned
        if abandoned != self._abandoned_logged:
            log.warning(
                "%d handler threads abandoned (their steps timed out but the handlers have "
                "not returned); they hold no slot, and end with the process",
                abandoned,
            )
            self._abandoned_logged = abandoned

        self.tasker.heartbeat(self.worker_id, self.lease_seconds, abandoned_threads=abandoned)

    def _reap(self) -> None:
        report = self.tasker.reap_expired_leases()
        if report.recorded:
            log.warning("returned %d steps with expired leases to the queue", len(report.recorded))
            if self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    def _fire_schedules(self) -> None:
        fired = self.tasker.fire_schedules()
        if fired:
            log.info(
                "schedules fired: %s",
                ", ".join(f"{f.key} at {f.tick:%Y-%m-%d %H:%M}Z" for f in fired),
            )
            if self._loop is not None and self._wake is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _every(self, seconds: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self._db(action)
            except Exception:
                log.exception("%s failed", getattr(action, "__name__", "background task"))

    def _start_listener(self) -> threading.Thread | None:
        if not getattr(self.tasker.database, "supports_notify", False):
            return None

        def listen() -> None:
            while not self._stopping:
                if self.tasker.database.listen("tasker_steps", 1.0) and self._loop:
                    self._loop.call_soon_threadsafe(self._wake_set)

        thread = threading.Thread(target=listen, name="tasker-listen", daemon=True)
        thread.start()
        return thread

    def _wake_set(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the database threads, so the loop never blocks."""
        assert self._loop is not None
        return await self._loop.run_in_executor(
            self._db_pool, functools.partial(fn, *args, **kwargs)
        )

    def _announce(self, served: HandlerCoverage) -> None:
        """Say what this worker serves and which handlers it could not load (and why)."""
        log.info("worker %s %s", self.worker_id, served.summary())
        if not served.handlers:
            log.warning(
                "worker %s can run no handler (check TASKER_TEMPLATES, --namespace and that "
                "the handler modules import): it claims nothing%s",
                self.worker_id,
                "; exiting (--burst)" if self.options.burst else " until restarted",
            )
            if self.options.burst:
                self.stop()
