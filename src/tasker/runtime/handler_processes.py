"""Child processes for handlers (``tasker worker --pool process``): a hung handler is
killed at its timeout instead of abandoned, and a crash or a leak stays in its child.

Each running step has a child of its own, reused for later steps. The child imports
the handler by its path, runs it (``asyncio.run`` for an ``async def`` one) and sends
back what happened as plain data: the results and published events, or the error as
stored on the step. At the step's timeout (or when the worker gives up on it) the
child is killed with SIGKILL and a fresh one serves the next step. Children ignore
SIGINT and SIGTERM (the worker decides when steps stop) and exit when the worker's
process goes away, even mid-handler.

The cost is a pickle and a pipe round trip per step, plus starting a child (an
interpreter that imports Tasker and the handler's module) the first time a slot is
used and after each kill: see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from tasker.branch import unwrap
from tasker.definitions.handler_paths import import_handler
from tasker.exceptions import PermanentError, RetryableError
from tasker.runtime.context import StepContext
from tasker.runtime.failures import error_info, unstorable_result

PARENT_CHECK_SECONDS = 1.0  # how often a child checks that its worker is still there


@dataclass(frozen=True)
class ChildOutcome:
    """What a handler did in its child, as data: ``error`` None means success."""

    results: Any = None
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    permanent: bool = False
    retry_after: float | None = None
    branch: tuple[str, ...] | None = None  # the names a returned tasker.Branch chose


class ChildDied(Exception):
    """The child running the step ended without answering (killed, crashed, out of memory)."""


def _run_in_child(handler_path: str, fields: dict[str, Any], max_bytes: int) -> ChildOutcome:
    ctx = StepContext(**fields)
    try:
        handler = import_handler(handler_path)
        results = asyncio.run(handler(ctx)) if is_async(handler) else handler(ctx)
    except BaseException as exc:  # user code: whatever it raises belongs to its step
        return ChildOutcome(
            error=error_info(exc),
            permanent=isinstance(exc, PermanentError),
            retry_after=exc.retry_after if isinstance(exc, RetryableError) else None,
        )
    results, branch = unwrap(results)
    error = unstorable_result(results, ctx.published, max_bytes)
    if error is not None:  # checked here too: it may not even survive pickling
        return ChildOutcome(error=error, permanent=True)
    outcome = ChildOutcome(results=results, published=list(ctx.published), branch=branch)
    try:
        pickle.dumps(outcome)
    except Exception as exc:
        problem = TypeError(f"result is not storable: it cannot leave the handler's process: {exc}")
        return ChildOutcome(error=error_info(problem), permanent=True)
    return outcome


def is_async(handler: Any) -> bool:
    """An ``async def`` function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
    )


def _child_main(conn: Connection, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    forked_by = os.getppid()  # the worker, or the fork server it started

    def watch_parent() -> None:
        while os.getppid() == forked_by and _alive(parent_pid):
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)  # the worker is gone: so is the step this child was running

    threading.Thread(target=watch_parent, daemon=True).start()
    while True:
        try:
            handler_path, fields, max_bytes = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_run_in_child(handler_path, fields, max_bytes))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Child:
    def __init__(self, context: Any):
        parent, child = context.Pipe()
        self.conn: Connection = parent
        self.process: BaseProcess = context.Process(
            target=_child_main, args=(child, os.getpid()), daemon=True, name="tasker-handler"
        )
        self.process.start()
        child.close()

    def run(self, handler_path: str, fields: dict[str, Any], max_bytes: int) -> ChildOutcome:
        try:
            self.conn.send((handler_path, fields, max_bytes))
            answer: ChildOutcome = self.conn.recv()
            return answer
        except (EOFError, OSError) as exc:
            raise ChildDied(f"the handler's process ended ({self.describe()})") from exc

    def describe(self) -> str:
        self.process.join(0.1)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


class HandlerProcesses:
    """Runs ``(handler_path, StepContext)`` jobs in reusable child processes."""

    def __init__(self, start_method: str = "forkserver"):
        # forkserver: children fork from a clean single-threaded server that has Tasker
        # imported (forking the worker itself, with its threads, is unsafe; spawning
        # starts a whole interpreter per child).
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload([__name__])
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._running: dict[Future[Any], _Child] = {}
        self._closed = False
        self.killed = 0  # children killed because their step was given up

    def submit(
        self, handler_path: str, ctx: StepContext, max_bytes: int
    ) -> tuple[Future[None], Future[ChildOutcome]]:
        """Run the handler in a child: the first future is done once a child has the job
        (starting a child is not the step's time), the second holds its outcome."""
        fields = {
            "task_id": ctx.task_id,
            "step_id": ctx.step_id,
            "name": ctx.name,
            "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts,
            "context": dict(ctx.context),
            "results": dict(ctx.results),
            "config": dict(ctx.config),
            "namespace": ctx.namespace,
            "task_name": ctx.task_name,
            "timeout_seconds": ctx.timeout_seconds,
            "signal": ctx.signal,
            "item": ctx.item,
            "index": ctx.index,
            # A child cannot reach the database: the executor preloaded every ancestor.
            "ancestors": ctx.ancestors if isinstance(ctx.ancestors, dict) else None,
        }
        started: Future[None] = Future()
        future: Future[ChildOutcome] = Future()
        for f in (started, future):
            f.set_running_or_notify_cancel()
        threading.Thread(
            target=self._serve,
            args=(started, future, handler_path, fields, max_bytes),
            daemon=True,
        ).start()
        return started, future

    def _serve(
        self,
        started: Future[None],
        future: Future[ChildOutcome],
        handler_path: str,
        fields: dict[str, Any],
        max_bytes: int,
    ) -> None:
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError("HandlerProcesses is shut down")
                child = self._idle.pop() if self._idle else None
            if child is None:
                child = _Child(self._context)
            with self._lock:
                self._running[future] = child
            started.set_result(None)
            outcome = child.run(handler_path, fields, max_bytes)
        except BaseException as exc:
            with self._lock:
                self._running.pop(future, None)
            if not started.done():
                started.set_exception(exc)
            future.set_exception(exc)
            return
        with self._lock:
            self._running.pop(future, None)
            if self._closed:
                child.kill()
            else:
                self._idle.append(child)
        future.set_result(outcome)

    def abandon(self, future: Future[Any] | asyncio.Future[Any]) -> bool:
        """Kill the child running this job (its step timed out or the worker stops)."""
        if not isinstance(future, Future):
            return False  # not a job of this pool (those are concurrent.futures futures)
        with self._lock:
            child = self._running.pop(future, None)
            if child is None:
                return False
            self.killed += 1
        child.kill()
        return True

    @property
    def abandoned(self) -> int:
        return 0  # a given-up step's child is killed, never left running

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            children = self._idle + list(self._running.values())
            self._idle = []
            self._running = {}
        for child in children:
            child.kill()
