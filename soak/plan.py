"""Given: what every task, the chaos and the human will do, decided from the seed.

Everything here is pure: the same seed and sizes give the same plans, schedule and
choices, before anything runs. What then happens is timing-dependent (which steps a
kill catches), and the checks judge that.

A task's plan names its shape and, for each step that misbehaves, a
:class:`Behaviour`. The plan travels in the task context (``context["soak"]``), where the
handlers read it, and in the ledger, where the checks read it.

Behaviours (``do``), each on the attempts ``1..times`` when it has ``times``.
Retryable (the step succeeds in the end):

- ``slow``: sleep ``seconds`` (below the timeout), then succeed;
- ``flaky``: raise RetryableError (half of them with ``retry_after``), then succeed;
- ``crash``: raise a BaseException (SystemExit, KeyboardInterrupt, a custom subclass);
- ``hang``: a sync step sleeps 10x its timeout in the handler thread, then returns;
- ``timeout``: an async step sleeps 10x its timeout (cancelled at the timeout).

For good (the step fails and its task with it, unless the human steps in):

- ``permanent``: raise PermanentError;
- ``exhaust``: raise RetryableError on every attempt, until attempts run out;
- ``unstorable``: return what the database refuses: NaN, a NUL character, a lone
  surrogate, a list nested 5000 deep.

A task is *all-retryable* when none of its steps misbehaves for good: it must complete.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from soak.behaviour import CRASH_KINDS, UNSTORABLE_KINDS, Behaviour
from soak.shapes import SHAPES, is_async

# Share of steps given each misbehaviour; the rest just succeed. "stall" is a hang on a
# sync step and a timeout on an async one. With about 10 steps per task, about 5 % of
# the tasks are planned to fail for good.
DEFAULT_MIX: dict[str, float] = {
    "slow": 0.05,
    "flaky": 0.04,
    "crash": 0.003,
    "stall": 0.003,
    "permanent": 0.002,
    "exhaust": 0.001,
    "unstorable": 0.002,
}


@dataclass(frozen=True)
class TaskPlan:
    """One task: its index in the workload, its shape, and its misbehaving steps."""

    index: int
    shape: str
    steps: dict[str, Behaviour] = field(default_factory=dict)

    @property
    def all_retryable(self) -> bool:
        return not any(b.for_good for b in self.steps.values())

    @property
    def label(self) -> str:
        return "all-retryable" if self.all_retryable else "fails-for-good"

    def context(self) -> dict[str, Any]:
        """The task context: the plan, where the handlers find it."""
        return {"soak": {"index": self.index, "plan": self.steps_json()}}

    def steps_json(self) -> dict[str, dict[str, Any]]:
        return {name: b.to_json() for name, b in self.steps.items()}

    @classmethod
    def from_json(cls, index: int, shape: str, steps: Mapping[str, Any]) -> TaskPlan:
        return cls(index, shape, {n: Behaviour.from_json(b) for n, b in steps.items()})


def plan_workload(
    seed: int,
    tasks: int,
    mix: Mapping[str, float] = DEFAULT_MIX,
    off: Collection[str] = (),
) -> list[TaskPlan]:
    """``tasks`` task plans from ``seed``: shapes by their share, misbehaviours by ``mix``;
    a step that draws a misbehaviour in ``off`` just succeeds instead (a control run),
    so switching one off leaves every other one where it was."""
    unknown = sorted(set(off) - set(mix))
    if unknown:
        raise ValueError(f"unknown misbehaviour {unknown[0]!r}; known: {', '.join(mix)}")
    rng = random.Random(f"{seed}:workload")
    names = list(SHAPES)
    weights = [SHAPES[n][1] for n in names]
    plans = []
    for index in range(tasks):
        shape = rng.choices(names, weights)[0]
        template = SHAPES[shape][0]
        steps: dict[str, Behaviour] = {}
        for position, spec in enumerate(template.steps):
            chosen, behaviour = _roll(rng, mix, is_async(position))
            if chosen not in off and behaviour.do != "ok":
                steps[spec.name] = behaviour
        plans.append(TaskPlan(index, shape, steps))
    return plans


def _roll(rng: random.Random, mix: Mapping[str, float], async_step: bool) -> tuple[str, Behaviour]:
    """One step's misbehaviour (a ``mix`` name, or "ok") and its behaviour. Draws the
    same random numbers whatever it picks."""
    roll, a, b = rng.random(), rng.random(), rng.random()
    chosen = "ok"
    edge = 0.0
    for name, share in mix.items():
        edge += share
        if roll < edge:
            chosen = name
            break
    return chosen, _behaviour(chosen, a, b, async_step)


def _behaviour(chosen: str, a: float, b: float, async_step: bool) -> Behaviour:
    if chosen == "slow":
        return Behaviour("slow", seconds=round(0.05 + 0.75 * a, 3))
    if chosen == "flaky":
        return Behaviour("flaky", times=1 + int(a * 2), retry_after=0.5 if b < 0.5 else None)
    if chosen == "crash":
        return Behaviour("crash", times=1, kind=CRASH_KINDS[int(a * len(CRASH_KINDS))])
    if chosen == "stall":
        return Behaviour("timeout" if async_step else "hang", times=1)
    if chosen == "unstorable":
        return Behaviour("unstorable", kind=UNSTORABLE_KINDS[int(a * len(UNSTORABLE_KINDS))])
    if chosen in ("permanent", "exhaust"):
        return Behaviour(chosen)
    return Behaviour()


def planned_attempts(plan: TaskPlan) -> int:
    """The most attempts a step of ``plan`` needs to succeed without chaos: at most 3 of
    the 6 allowed, so three attempts lost to the chaos still leave it one to succeed."""
    return max((b.times + 1 for b in plan.steps.values() if not b.for_good), default=1)


# Behaviours that keep a task running for seconds: a timeout, or six attempts with backoff.
LINGERING = frozenset({"hang", "timeout", "exhaust"})


# -- the human ------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanChoice:
    """What the human operator does to one task.

    ``cancel_after``: cancel it this many seconds after it was created (it may have
    finished by then: the CLI then refuses). ``recover``: when a task planned to fail
    for good fails, retry it once (it fails again: the plan is deterministic) and then
    resolve its failed steps by hand, until it completes or three rounds have passed.
    """

    cancel_after: float | None = None
    recover: bool = False


def human_choice(
    seed: int, plan: TaskPlan, cancel_share: float, recover_share: float
) -> HumanChoice:
    """The human cancels ``cancel_share`` of the tasks that take a while (a step that
    stalls or fails on every attempt), soon after they start, so most of those cancels
    meet a running task; and a twentieth of that share of the others, which have mostly
    finished by the time the command runs."""
    rng = random.Random(f"{seed}:human:{plan.index}")
    cancel, delay, recover = rng.random(), rng.uniform(0.0, 1.0), rng.random()
    lingers = any(b.do in LINGERING for b in plan.steps.values())
    share = cancel_share if lingers else cancel_share / 20
    return HumanChoice(
        cancel_after=round(delay, 3) if cancel < share else None,
        recover=not plan.all_retryable and recover < recover_share,
    )


# -- the chaos ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosEvent:
    """At ``at_seconds`` into the run: ``kill`` (SIGKILL) or ``term`` (SIGTERM) the worker
    in ``slot`` (then start a new one there), or ``restart_db`` (PostgreSQL)."""

    at_seconds: float
    action: str
    slot: int | None = None


def chaos_schedule(
    seed: int,
    *,
    window_seconds: float,
    every_seconds: tuple[float, float],
    workers: int,
    restart_db_at: float | None,
) -> list[ChaosEvent]:
    """Signals at random intervals during the window, alternating kill and term (so any
    two events include both), never to slot 0: that worker lives through the whole run,
    so its memory shows what a long-lived worker does. One database restart, if asked."""
    rng = random.Random(f"{seed}:chaos")
    events: list[ChaosEvent] = []
    actions = ["kill", "term"] if rng.random() < 0.5 else ["term", "kill"]
    at = rng.uniform(*every_seconds)
    while at < window_seconds:
        slot = rng.randrange(1, workers) if workers > 1 else 0
        events.append(ChaosEvent(round(at, 3), actions[len(events) % 2], slot))
        at += rng.uniform(*every_seconds)
    if restart_db_at is not None:
        events.append(ChaosEvent(round(restart_db_at, 3), "restart_db"))
    return sorted(events, key=lambda e: e.at_seconds)
