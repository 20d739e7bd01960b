"""The workload's handlers: each step does what its task's plan says.

The plan is in the task context (``context["soak"]["plan"][step name]``, see
:mod:`soak.plan`); a step without one just succeeds. Just before returning a result the
handler appends an ``ok`` line to the ledger (``unstorable`` for a result the database
must refuse), so the checks can compare what ran with what the database recorded.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from soak.behaviour import Behaviour
from soak.ledger import Ledger
from tasker import PermanentError, RetryableError, StepContext

STALL_FACTOR = 10  # a stalled step sleeps this many times its timeout: "far past" it
DEEP_LEVELS = 5000


class SoakBaseException(BaseException):
    """A BaseException subclass no library knows about: the worker must survive it too."""


CRASHES: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "SoakBaseException": SoakBaseException,
}

_ledger = Ledger.from_env()  # SOAK_LEDGER; None outside a soak run


def act(step: StepContext) -> Any:
    """The sync handler: slow and hang steps block this thread."""
    behaviour = planned(step)
    if behaviour.do == "slow":
        time.sleep(behaviour.seconds)
    if behaviour.do == "hang" and behaviour.misbehaves_on(step.attempt):
        time.sleep(stall_seconds(step))
    return finish(step, behaviour)


async def act_async(step: StepContext) -> Any:
    """The async handler: its sleeps are cancelled when the attempt times out."""
    behaviour = planned(step)
    if behaviour.do == "slow":
        await asyncio.sleep(behaviour.seconds)
    if behaviour.do == "timeout" and behaviour.misbehaves_on(step.attempt):
        await asyncio.sleep(stall_seconds(step))
    return finish(step, behaviour)


def stall_seconds(step: StepContext) -> float:
    return STALL_FACTOR * (step.timeout_seconds or 3.0)


def planned(step: StepContext) -> Behaviour:
    plan = step.context.get("soak", {}).get("plan", {})
    return Behaviour.from_json(plan.get(step.name))


def finish(step: StepContext, behaviour: Behaviour) -> Any:
    """Raise what the plan says for this attempt, or note the result and return it."""
    where = f"step {step.name!r} of task {step.task_id}, attempt {step.attempt}"
    if behaviour.do == "permanent":
        raise PermanentError(f"soak: planned permanent failure ({where})")
    if behaviour.do == "exhaust":
        raise RetryableError(f"soak: planned failure on every attempt ({where})")
    if behaviour.do == "flaky" and behaviour.misbehaves_on(step.attempt):
        raise RetryableError(
            f"soak: planned failure {step.attempt} of {behaviour.times} ({where})",
            retry_after=behaviour.retry_after,
        )
    if behaviour.do == "crash" and behaviour.misbehaves_on(step.attempt):
        raise CRASHES[behaviour.kind](f"soak: planned {behaviour.kind} ({where})")
    if behaviour.do == "unstorable":
        note("unstorable", step)
        return unstorable(behaviour.kind)
    note("ok", step)
    return {"step": step.name, "attempt": step.attempt}


def unstorable(kind: str) -> Any:
    """A result that JSON or the database refuses."""
    if kind == "nan":
        return {"value": float("nan")}
    if kind == "nul":
        return {"text": "before\x00after"}
    if kind == "surrogate":
        return {"text": "lone \ud800 surrogate"}
    deep: list[Any] = []
    for _ in range(DEEP_LEVELS):
        deep = [deep]
    return deep


def note(kind: str, step: StepContext) -> None:
    """Append this execution to the ledger (when the run has one)."""
    if _ledger is None:
        return
    _ledger.append(
        {
            "k": kind,
            "task": step.task_id,
            "step": step.step_id,
            "name": step.name,
            "attempt": step.attempt,
            "pid": os.getpid(),
            "ppid": os.getppid(),  # the worker, when handlers run in child processes
            "t": round(time.time(), 6),
        }
    )
