"""Running one claimed step: call its handler, turn what happened into an Outcome.

Async handlers run on the loop and are cancelled at the timeout. Sync handlers run
in a thread pool; at the timeout they are abandoned (a thread cannot be killed) and
the attempt is recorded as failed, which clears the claim token so a late result
is refused.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from tasker.engine.context import StepContext
from tasker.engine.execution import ClaimedStep, Outcome
from tasker.exceptions import PermanentError, RetryableError
from tasker.observability.tracing import mark_failed, step_span

TRACEBACK_LIMIT_CHARS = 4000


def error_info(exc: BaseException) -> dict[str, Any]:
    """Class, message and a trimmed traceback, as stored on the step."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(text) > TRACEBACK_LIMIT_CHARS:
        text = "…" + text[-TRACEBACK_LIMIT_CHARS:]
    return {"class": type(exc).__name__, "message": str(exc), "traceback": text}


def step_context(claimed: ClaimedStep) -> StepContext:
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
    )


async def execute(
    claimed: ClaimedStep,
    resolve: Callable[[str], Callable[..., Any]],
    threads: Executor | None = None,
) -> Outcome:
    """Run the step's handler once, in a tracing span, and report how it went.
    Never raises."""
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
        outcome = await _execute(claimed, resolve, threads)
        outcome = replace(outcome, duration_seconds=time.perf_counter() - started)
        if outcome.error is not None:
            mark_failed(span, outcome.error["class"], outcome.error["message"])
        return outcome


async def _execute(
    claimed: ClaimedStep,
    resolve: Callable[[str], Callable[..., Any]],
    threads: Executor | None,
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
    except Exception as exc:
        return failed(exc)
    ctx = step_context(claimed)
    timeout = claimed.timeout_seconds
    try:
        if inspect.iscoroutinefunction(handler):
            results = await asyncio.wait_for(handler(ctx), timeout)
        else:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(threads, handler, ctx)
            # shield: on timeout we stop waiting, but cannot stop the thread itself.
            results = await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        return failed(
            TimeoutError(f"step {claimed.name!r} exceeded its timeout of {timeout} seconds")
        )
    except PermanentError as exc:
        return failed(exc, permanent=True)
    except RetryableError as exc:
        return failed(exc, retry_after=exc.retry_after)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return failed(exc)
    try:
        json.dumps(results)
    except (TypeError, ValueError) as exc:
        # Running it again would return the same thing: no point retrying.
        return failed(
            TypeError(
                f"step {claimed.name!r} returned a value that is not JSON-serialisable: {exc}"
            ),
            permanent=True,
        )
    return Outcome(
        claimed.step_id,
        claimed.task_id,
        claimed.claim_token,
        results=results,
        events=tuple(ctx.published),
    )
