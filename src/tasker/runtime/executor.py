"""Running one claimed step: call its handler, turn what happened into an Outcome.

This is the one seam between Tasker and user code, and user code is hostile: whatever
a handler returns, raises (``BaseException`` included) or never finishes, it becomes
an Outcome of its own step here, and nothing escapes to the worker.

Async handlers run on the loop and are cancelled at the timeout. Sync handlers run on
``HandlerThreads``; at the timeout their thread is abandoned (a thread cannot be
killed: it is counted, frees its slot, and ends with the process). With
``HandlerProcesses`` (``--pool process``) every handler runs in a child process,
killed at the timeout. Either way the attempt is recorded as failed, which clears the
claim token so a late result is refused. Results that cannot be stored faithfully
(``tasker.payloads``) fail the step permanently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

from tasker.branch import Branch, unwrap
from tasker.engine.attempts import ClaimedStep, Outcome
from tasker.exceptions import PermanentError, RetryableError
from tasker.observability.tracing import mark_failed, step_span
from tasker.payloads import DEFAULT_MAX_RESULT_BYTES
from tasker.runtime.context import StepContext
from tasker.runtime.failures import error_info, unstorable_result
from tasker.runtime.handler_processes import ChildDied, ChildOutcome, HandlerProcesses, is_async
from tasker.runtime.handler_threads import HandlerThreads


class Ancestry(Protocol):
    """Where ``step.ancestor(name)`` finds the results of steps upstream (the facade)."""

    def ancestor_results(self, step_id: int, name: str) -> Any:
        """The results of step ``name`` upstream of ``step_id``; KeyError if none is."""

    def all_ancestor_results(self, step_id: int) -> dict[str, Any]:
        """Every step upstream of ``step_id``, by name, with its results."""


def step_context(
    claimed: ClaimedStep,
    ancestry: Ancestry | None = None,
    preloaded: dict[str, Any] | None = None,
) -> StepContext:
    loader: Callable[[str], Any] | dict[str, Any] | None = preloaded
    if loader is None and ancestry is not None:
        loader = partial(ancestry.ancestor_results, claimed.step_id)
    return StepContext(
        task_id=claimed.task_id,
        step_id=claimed.step_id,
        name=claimed.name,
        attempt=claimed.attempt,
        max_attempts=claimed.max_attempts,
        context=claimed.context,
        results=claimed.parent_results,
        config=claimed.config,
        namespace=claimed.namespace,
        task_name=claimed.task_name,
        timeout_seconds=claimed.timeout_seconds,
        signal=claimed.signal,
        item=claimed.item,
        index=claimed.index,
        ancestors=loader,
    )


async def execute(
    claimed: ClaimedStep,
    resolve: Callable[[str], Callable[..., Any]],
    pool: Executor | HandlerProcesses | None = None,
    *,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    ancestry: Ancestry | None = None,
) -> Outcome:
    """Run the step's handler once, in a tracing span, and report how it went.

    Never raises, whatever the handler does, except ``asyncio.CancelledError`` when the
    caller itself is cancelled (the worker stopping)."""
    attributes = {
        "tasker.task_id": claimed.task_id,
        "tasker.step_id": claimed.step_id,
        "tasker.step": claimed.name,
        "tasker.attempt": claimed.attempt,
        "tasker.max_attempts": claimed.max_attempts,
        "tasker.namespace": claimed.namespace,
        "tasker.task_name": claimed.task_name,
    }
    with step_span(claimed.trace_context, attributes) as span:
        started = time.perf_counter()
        outcome = await _execute(claimed, resolve, pool, max_result_bytes, ancestry)
        outcome = replace(outcome, duration_seconds=time.perf_counter() - started)
        if outcome.error is not None:
            mark_failed(span, outcome.error["class"], outcome.error["message"])
        return outcome


class _Raised:
    """What a handler raised, carried out of its task as a value: asyncio lets
    ``SystemExit`` and ``KeyboardInterrupt`` escaping a task stop the whole loop."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


def _called(handler: Callable[..., Any], ctx: StepContext) -> Any:
    """A sync handler's call on its thread; what it raises comes back as a value. A
    future cannot carry every exception (asyncio refuses ``StopIteration``: the step
    would wait for ever), and the worker must see the class the handler raised."""
    try:
        return handler(ctx)
    except BaseException as exc:  # user code: whatever it raises belongs to its step
        return _Raised(exc)


async def _guarded(handler: Callable[..., Any], ctx: StepContext) -> Any:
    try:
        return await handler(ctx)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the timeout or the worker cancelled us
        return _Raised(exc)  # the handler raised CancelledError of its own accord
    except BaseException as exc:  # user code: whatever it raises belongs to its step
        return _Raised(exc)


async def _execute(
    claimed: ClaimedStep,
    resolve: Callable[[str], Callable[..., Any]],
    pool: Executor | HandlerProcesses | None,
    max_result_bytes: int,
    ancestry: Ancestry | None,
) -> Outcome:
    def failed(
        exc: BaseException, *, permanent: bool = False, retry_after: float | None = None
    ) -> Outcome:
        return Outcome(
            claimed.step_id,
            claimed.task_id,
            claimed.claim_token,
            error=error_info(exc),
            permanent=permanent,
            retry_after=retry_after,
        )

    try:
        handler = resolve(claimed.handler)
    except BaseException as exc:  # an import may raise anything, SystemExit included
        return failed(exc)
    preloaded = None
    if isinstance(pool, HandlerProcesses) and ancestry is not None and claimed.total_parents:
        # A child process cannot reach the database: it gets every ancestor's results.
        try:
            preloaded = await asyncio.to_thread(ancestry.all_ancestor_results, claimed.step_id)
        except Exception as exc:  # the database failed: this attempt fails, retryably
            return failed(exc)
    ctx = step_context(claimed, ancestry, preloaded)
    timeout = claimed.timeout_seconds
    concurrent: Future[Any] | asyncio.Future[Any] | None = None  # what the pool knows it by
    future: asyncio.Future[Any] | None = None
    try:
        if isinstance(pool, HandlerProcesses):
            started, concurrent = pool.submit(claimed.handler, ctx, max_result_bytes)
            future = asyncio.wrap_future(concurrent)
            future.add_done_callback(_retrieve)
            await asyncio.wrap_future(started)
            results = await asyncio.wait_for(asyncio.shield(future), timeout)
        elif is_async(handler):
            results = await asyncio.wait_for(_guarded(handler, ctx), timeout)
        elif isinstance(pool, HandlerThreads):
            # The thread hands its outcome straight to this future; on timeout wait_for
            # cancels the future, which only stops the wait (the thread cannot be stopped).
            future = concurrent = pool.submit_to(asyncio.get_running_loop(), _called, handler, ctx)
            results = await asyncio.wait_for(future, timeout)
        else:
            if pool is None:
                future = asyncio.get_running_loop().run_in_executor(None, _called, handler, ctx)
            else:
                concurrent = pool.submit(_called, handler, ctx)
                future = asyncio.wrap_future(concurrent)
            future.add_done_callback(_retrieve)
            # shield: on timeout we stop waiting, but cannot stop the thread itself.
            results = await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError as exc:
        if future is not None and future.done() and not future.cancelled():
            results = _Raised(exc)  # the handler raised TimeoutError itself
        else:
            _abandon(pool, concurrent)
            return failed(
                TimeoutError(f"step {claimed.name!r} exceeded its timeout of {timeout} seconds")
            )
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            _abandon(pool, concurrent)
            raise
        return failed(asyncio.CancelledError("the handler raised CancelledError"))
    except ChildDied as exc:
        return failed(exc)
    except BaseException as exc:  # a sync handler's exception, re-raised from its thread
        results = _Raised(exc)
    if isinstance(results, ChildOutcome):
        if results.error is not None:
            return Outcome(
                claimed.step_id,
                claimed.task_id,
                claimed.claim_token,
                error=results.error,
                permanent=results.permanent,
                retry_after=results.retry_after,
            )
        ctx.published.extend(results.published)
        if results.branch is not None:
            return _checked(
                claimed, ctx, Branch(*results.branch, results=results.results), max_result_bytes
            )
        results = results.results
    if isinstance(results, _Raised):
        raised = results.exc
        if isinstance(raised, PermanentError):
            return failed(raised, permanent=True)
        if isinstance(raised, RetryableError):
            return failed(raised, retry_after=raised.retry_after)
        return failed(raised)
    return _checked(claimed, ctx, results, max_result_bytes)


def _checked(claimed: ClaimedStep, ctx: StepContext, results: Any, max_bytes: int) -> Outcome:
    """Success, if what the handler returned and published can be stored faithfully;
    otherwise a permanent failure (running it again would return the same thing)."""
    results, branch = unwrap(results)
    error = unstorable_result(results, ctx.published, max_bytes)
    if error is not None:
        return Outcome(
            claimed.step_id, claimed.task_id, claimed.claim_token, error=error, permanent=True
        )
    return Outcome(
        claimed.step_id,
        claimed.task_id,
        claimed.claim_token,
        results=results,
        events=tuple(ctx.published),
        branch=branch,
    )


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read a given-up handler's late exception, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()


def _abandon(
    pool: Executor | HandlerProcesses | None,
    concurrent: Future[Any] | asyncio.Future[Any] | None,
) -> None:
    """The step gives up on its handler. A thread cannot be killed: the pool stops
    counting it as busy and counts it as abandoned. A child process is killed."""
    if concurrent is not None and isinstance(pool, HandlerThreads | HandlerProcesses):
        pool.abandon(concurrent)
