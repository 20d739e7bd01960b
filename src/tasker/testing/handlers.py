"""Scripted handlers: one handler whose behaviour comes from the step's ``config``.

A template names ``tasker.testing.handlers:scripted`` (or ``scripted_async``) and each
step's config says what that step does, so a test can describe failures as data and a
worker subprocess can import the same handler. The config keys (a *plan*):

=========================  =================================================================
``fail_times: n``          raise RetryableError while ``attempt <= n``, then succeed
``timeout_times: n``       sleep ``timeout_sleep_seconds`` (default 10) while ``attempt <= n``,
                           so a small ``timeout_seconds`` on the step fires
``always_fail: true``      raise RetryableError on every attempt
``permanent: true``        raise PermanentError (no further attempts)
``retry_after: s``         the RetryableError asks for ``s`` seconds of backoff
``result: {...}``          the step's results; default ``{"step", "attempt", "parents"}``
``sleep_seconds: s``       sleep ``s`` seconds before anything else (simulated work)
=========================  =================================================================

The factories (``fail_times(2)``, ``times_out(1)``...) return these fragments; merge
several with ``{**fail_times(1), **returns({"ok": True})}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from tasker.exceptions import PermanentError, RetryableError
from tasker.runtime.context import StepContext

DEFAULT_TIMEOUT_SLEEP_SECONDS = 10.0

PLAN_KEYS = frozenset(
    {
        "fail_times",
        "timeout_times",
        "timeout_sleep_seconds",
        "always_fail",
        "permanent",
        "retry_after",
        "result",
        "sleep_seconds",
    }
)


def scripted(step: StepContext) -> Any:
    """Do what the step's config plan says (see the module docstring)."""
    time.sleep(_seconds(step.config, "sleep_seconds", 0.0))
    stall = _stall_seconds(step)
    if stall:
        time.sleep(stall)
    return _finish(step)


async def scripted_async(step: StepContext) -> Any:
    """``scripted`` as a coroutine: its sleeps are cancelled when the step times out, so
    a timed-out attempt leaves no thread behind."""
    await asyncio.sleep(_seconds(step.config, "sleep_seconds", 0.0))
    stall = _stall_seconds(step)
    if stall:
        await asyncio.sleep(stall)
    return _finish(step)


def default_result(step: StepContext) -> dict[str, Any]:
    """What a scripted step returns without a ``result`` plan."""
    return {"step": step.name, "attempt": step.attempt, "parents": sorted(step.results)}


# -- plan fragments -------------------------------------------------------------------


def fail_times(n: int, *, retry_after: float | None = None) -> dict[str, Any]:
    """Fail the first ``n`` attempts (RetryableError), then succeed."""
    return _with_retry_after({"fail_times": n}, retry_after)


def times_out(n: int, *, sleep_seconds: float = DEFAULT_TIMEOUT_SLEEP_SECONDS) -> dict[str, Any]:
    """Hang for ``sleep_seconds`` on the first ``n`` attempts; give the step a
    ``timeout_seconds`` well below that so the attempt times out."""
    return {"timeout_times": n, "timeout_sleep_seconds": sleep_seconds}


def always_fail(*, retry_after: float | None = None) -> dict[str, Any]:
    """Fail every attempt with a RetryableError, until attempts run out."""
    return _with_retry_after({"always_fail": True}, retry_after)


def fail_permanently() -> dict[str, Any]:
    """Fail with a PermanentError: one attempt, never retried."""
    return {"permanent": True}


def returns(result: Any) -> dict[str, Any]:
    """Succeed with ``result`` (JSON-serialisable) as the step's results."""
    return {"result": result}


def check_plan(plan: Mapping[str, Any], step: str | None = None) -> None:
    """Raise ValueError on a key no scripted handler understands (a typo in a test)."""
    unknown = sorted(set(plan) - PLAN_KEYS)
    if unknown:
        where = f" for step {step!r}" if step else ""
        raise ValueError(
            f"unknown plan key {unknown[0]!r}{where}; known keys: {', '.join(sorted(PLAN_KEYS))}"
        )


# -- internals ------------------------------------------------------------------------


def _with_retry_after(plan: dict[str, Any], retry_after: float | None) -> dict[str, Any]:
    if retry_after is not None:
        plan["retry_after"] = retry_after
    return plan


def _seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    return float(value) if value is not None else default


def _stall_seconds(step: StepContext) -> float:
    if step.attempt <= int(step.config.get("timeout_times", 0)):
        return _seconds(step.config, "timeout_sleep_seconds", DEFAULT_TIMEOUT_SLEEP_SECONDS)
    return 0.0


def _finish(step: StepContext) -> Any:
    config = step.config
    where = f"step {step.name!r}, attempt {step.attempt} of {step.max_attempts}"
    if config.get("permanent"):
        raise PermanentError(f"scripted permanent failure ({where})")
    retry_after = config.get("retry_after")
    if config.get("always_fail"):
        raise RetryableError(f"scripted failure, always ({where})", retry_after=retry_after)
    if step.attempt <= int(config.get("fail_times", 0)):
        raise RetryableError(
            f"scripted failure {step.attempt} of {config['fail_times']} ({where})",
            retry_after=retry_after,
        )
    if "result" in config:
        return config["result"]
    return default_result(step)
