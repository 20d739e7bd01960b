"""Threads for sync handlers that a hung handler cannot exhaust or keep alive.

``concurrent.futures.ThreadPoolExecutor`` has a fixed number of threads, joined when
the interpreter exits. A handler that never returns then holds one of them for good:
every step queued behind it waits without running, and the process cannot exit. Here a
thread is started whenever none is idle, so a step always starts at once; the caller
bounds how many steps run (the worker's slots). A thread whose step was given up at
its timeout is *abandoned*: counted until its handler returns, if it ever does. The
threads are daemons, so an abandoned one never keeps the process alive.

``submit_to`` hands a job's result straight to an asyncio future, and hands results back
in batches: the threads queue what finished and wake the loop once for all of it, rather
than once per job through a ``concurrent.futures.Future`` chained to an asyncio one.

New threads are started by a starter thread, not by the submitter: ``Thread.start`` waits
until the new thread runs, which in a busy process is up to the interpreter's switch
interval (5 ms), and a worker that claimed 100 steps would wait that long for each new
thread before its event loop ran anything else. A job never waits for its own thread:
any thread that is free first takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

IDLE_SECONDS = 60.0  # an idle thread exits after this long


class _Handoff:
    """Results on their way from the threads to one event loop: one wake-up of the loop
    carries every result queued since the last one."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._done: deque[tuple[asyncio.Future[Any], BaseException | None, Any]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
        with self._lock:
            self._done.append((future, error, result))
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            done, self._done = self._done, deque()
            self._scheduled = False
        for future, error, result in done:
            if future.done():  # cancelled: the step gave up on its handler
                continue
            if error is None:
                future.set_result(result)
            elif isinstance(error, StopIteration):  # a future refuses to carry it
                wrapped = RuntimeError(f"the job raised StopIteration: {error}")
                wrapped.__cause__ = error
                future.set_exception(wrapped)
            else:
                future.set_exception(error)


class _Job:
    __slots__ = ("abandoned", "args", "fn", "future", "handoff")

    def __init__(
        self,
        future: Future[Any] | asyncio.Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        handoff: _Handoff | None = None,
    ):
        self.future = future
        self.fn = fn
        self.args = args
        self.handoff = handoff
        self.abandoned = False


class HandlerThreads(Executor):
    """An executor that never makes a job wait for a thread."""

    def __init__(self, name: str = "tasker-step"):
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._abandoned = 0
        self._running: dict[Hashable, _Job] = {}
        self._closed = False
        self._handoff: _Handoff | None = None
        # Requests to start a thread (True), or to stop the starter (False); see _starter.
        self._starts: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._starter: threading.Thread | None = None

    @property
    def abandoned(self) -> int:
        """Threads still running a handler whose step was given up."""
        with self._lock:
            return self._abandoned

    @property
    def threads(self) -> int:
        with self._lock:
            return self._threads

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            raise TypeError("HandlerThreads.submit takes positional arguments only")
        future: Future[T] = Future()
        self._start(_Job(future, fn, args))
        return future

    def submit_to(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., T], /, *args: Any
    ) -> asyncio.Future[T]:
        """``fn(*args)`` on a thread, its outcome in a future of ``loop`` (the running
        loop). Cancelling the future only stops waiting: the handler runs on."""
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop:
            handoff = self._handoff = _Handoff(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._start(_Job(future, fn, args, handoff))
        return future

    def _start(self, job: _Job) -> None:
        future = job.future
        with self._lock:
            if self._closed:
                raise RuntimeError("HandlerThreads is shut down")
            start = self._idle == 0
            if start and self._starter is None:  # the first thread: the starter with it
                starter = threading.Thread(
                    target=self._start_threads, name=f"{self._name}-starter", daemon=True
                )
                starter.start()  # once; may raise, as a thread's start would
                self._starter = starter
            self._running[future] = job
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if start:
            self._starts.put(True)

    def _start_threads(self) -> None:
        """The starter: starts a thread per request until shutdown asks it to stop."""
        serial = itertools.count(1)
        while self._starts.get():
            try:
                threading.Thread(
                    target=self._serve, name=f"{self._name}-{next(serial)}", daemon=True
                ).start()
            except RuntimeError as exc:  # the system is out of threads
                self._refuse_one(exc)

    def _refuse_one(self, exc: RuntimeError) -> None:
        """A thread asked for could not start: one queued job fails with the error (any
        one: they all wait alike), as its submit would have if it had started the thread.
        If none is queued any more, a thread that came free took it: one fewer is idle
        (and a stop that shutdown queued for that thread is one too many)."""
        with self._lock:
            self._threads -= 1
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            job = None
        if job is None:
            with self._lock:
                self._idle -= 1
            return
        with self._lock:
            self._running.pop(job.future, None)
        failure = RuntimeError(f"cannot start a thread for the handler: {exc}")
        if job.handoff is not None:
            assert isinstance(job.future, asyncio.Future)
            job.handoff.put(job.future, failure, None)
        elif isinstance(job.future, Future) and job.future.set_running_or_notify_cancel():
            job.future.set_exception(failure)

    def abandon(self, future: Future[Any] | asyncio.Future[Any]) -> bool:
        """Give up on a running job (its step timed out). True if its thread is stuck in
        the handler now, and so counted as abandoned until the handler returns."""
        with self._lock:
            job = self._running.get(future)
            if job is None or job.abandoned:
                return False
            job.abandoned = True
            self._abandoned += 1
            return True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the idle threads. Never waits for a running handler: it may never return."""
        with self._lock:
            self._closed = True
            idle = self._idle
        self._starts.put(False)  # after the starts already asked for: their jobs still run
        for _ in range(idle):
            self._jobs.put(None)

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                job = None
                with self._lock:
                    if self._idle == 0:
                        continue  # a job is on its way to this thread
                    self._idle -= 1
                    self._threads -= 1
                return
            if job is None:
                with self._lock:
                    self._threads -= 1
                return
            self._run(job)
            with self._lock:
                self._running.pop(job.future, None)
                if job.abandoned:
                    self._abandoned -= 1
                if self._closed:
                    self._threads -= 1
                    return
                self._idle += 1

    @staticmethod
    def _run(job: _Job) -> None:
        if job.handoff is not None:
            assert isinstance(job.future, asyncio.Future)
            try:
                result = job.fn(*job.args)
            except BaseException as exc:  # user code: whatever it raises belongs to its step
                job.handoff.put(job.future, exc, None)
            else:
                job.handoff.put(job.future, None, result)
            return
        assert isinstance(job.future, Future)
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.fn(*job.args)
        except BaseException as exc:  # user code: whatever it raises belongs to its step
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
