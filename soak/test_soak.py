"""The suite's own logic, without a database: plans are reproducible, handlers do what
their plan says, and each check fails on the facts it exists to catch.

    .venv/bin/python -m pytest -q soak      (make soak-smoke runs it first)
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from soak import checks
from soak.behaviour import Behaviour
from soak.facts import Claim, Facts
from soak.handlers import SoakBaseException, act, act_async
from soak.plan import (
    DEFAULT_MIX,
    TaskPlan,
    chaos_schedule,
    human_choice,
    plan_workload,
    planned_attempts,
)
from soak.shapes import MAX_ATTEMPTS
from soak.workers import WorkerExit
from tasker import PermanentError, RetryableError, StepContext

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# -- plans ----------------------------------------------------------------------------------


def test_the_same_seed_plans_the_same_workload_and_another_seed_another() -> None:
    assert plan_workload(7, 300) == plan_workload(7, 300)
    assert plan_workload(7, 300) != plan_workload(8, 300)


def test_a_task_is_all_retryable_unless_a_step_fails_for_good() -> None:
    flaky = TaskPlan(0, "linear", {"step_1": Behaviour("flaky", times=2)})
    broken = TaskPlan(
        1,
        "linear",
        {"step_1": Behaviour("flaky", times=2), "step_2": Behaviour("unstorable", kind="nan")},
    )
    assert flaky.all_retryable and not broken.all_retryable


def test_switching_a_misbehaviour_off_leaves_the_others_where_they_were() -> None:
    full = plan_workload(3, 400)
    calm = plan_workload(3, 400, DEFAULT_MIX, off=["crash"])
    for a, b in zip(full, calm, strict=True):
        assert a.shape == b.shape
        assert {n: x for n, x in a.steps.items() if x.do != "crash"} == b.steps


def test_every_plan_leaves_three_attempts_spare_for_the_chaos() -> None:
    needed = max(planned_attempts(p) for p in plan_workload(1, 3000))
    assert needed <= MAX_ATTEMPTS - 3


def test_the_chaos_alternates_kill_and_term_and_spares_slot_0() -> None:
    events = chaos_schedule(
        5, window_seconds=200, every_seconds=(5, 10), workers=4, restart_db_at=90
    )
    signals = [e for e in events if e.action != "restart_db"]
    assert {e.action for e in signals[:2]} == {"kill", "term"}
    assert all(e.slot in (1, 2, 3) for e in signals)
    assert [e.action for e in events].count("restart_db") == 1


def test_the_human_only_recovers_tasks_planned_to_fail() -> None:
    plans = plan_workload(2, 2000)
    chosen = [p for p in plans if human_choice(2, p, 0.1, 1.0).recover]
    assert chosen and all(not p.all_retryable for p in chosen)


# -- handlers -------------------------------------------------------------------------------


def context(name: str, behaviour: Behaviour, attempt: int = 1) -> StepContext:
    return StepContext(
        task_id=1,
        step_id=10,
        name=name,
        attempt=attempt,
        max_attempts=6,
        context={"soak": {"plan": {name: behaviour.to_json()}}},
        results={},
        config={},
        timeout_seconds=0.01,
    )


@pytest.mark.parametrize(
    ("behaviour", "raised"),
    [
        (Behaviour("flaky", times=2), RetryableError),
        (Behaviour("exhaust"), RetryableError),
        (Behaviour("permanent"), PermanentError),
        (Behaviour("crash", times=1, kind="SystemExit"), SystemExit),
        (Behaviour("crash", times=1, kind="KeyboardInterrupt"), KeyboardInterrupt),
        (Behaviour("crash", times=1, kind="SoakBaseException"), SoakBaseException),
    ],
)
def test_a_misbehaving_step_raises_what_its_plan_says_on_its_first_attempt(
    behaviour: Behaviour, raised: type[BaseException]
) -> None:
    with pytest.raises(raised):
        act(context("s", behaviour))


def test_a_flaky_step_succeeds_once_its_planned_failures_are_spent() -> None:
    assert act(context("s", Behaviour("flaky", times=2), attempt=3)) == {"step": "s", "attempt": 3}


def test_unstorable_results_are_nan_nul_a_lone_surrogate_and_5000_deep() -> None:
    nan = act(context("s", Behaviour("unstorable", kind="nan")))
    assert math.isnan(nan["value"])
    assert "\x00" in act(context("s", Behaviour("unstorable", kind="nul")))["text"]
    assert "\ud800" in act(context("s", Behaviour("unstorable", kind="surrogate")))["text"]
    deep: Any = act(context("s", Behaviour("unstorable", kind="deep")))
    depth = 0
    while deep:
        deep, depth = deep[0], depth + 1
    assert depth == 5000


def test_an_async_step_planned_to_time_out_sleeps_far_past_its_timeout() -> None:
    step = context("s", Behaviour("timeout", times=1))
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(act_async(step), 0.05))  # 10 x 0.01 s timeout = 0.1 s


# -- checks ---------------------------------------------------------------------------------


def facts_with_one_step(claims: list[Claim], ok: list[dict[str, Any]]) -> Facts:
    """Given task 1 with one step (id 10), complete, its history and ledger lines."""
    facts = Facts()
    facts.tasks[1] = {"id": 1, "status": "complete"}
    facts.steps[10] = {
        "id": 10,
        "task_id": 1,
        "name": "s",
        "status": "complete",
        "attempts": claims[-1].attempt,
        "max_attempts": 6,
        "error": None,
    }
    facts.claims[10] = claims
    facts.completions[10] = 1
    facts.completed_events[10] = 1
    facts.plans[1] = TaskPlan(0, "linear")
    facts.ok = ok
    return facts


def claim(
    attempt: int, pid: int, at: float, end: str, end_class: str | None, end_at: float
) -> Claim:
    return Claim(
        10,
        attempt,
        f"host-{pid}-abc123",
        pid,
        T0 + timedelta(seconds=at),
        end,
        end_class,
        T0 + timedelta(seconds=end_at),
    )


def ok_line(attempt: int, pid: int, at: float) -> dict[str, Any]:
    return {
        "k": "ok",
        "task": 1,
        "step": 10,
        "attempt": attempt,
        "pid": pid,
        "t": (T0 + timedelta(seconds=at)).timestamp(),
    }


def test_a_step_run_again_after_its_worker_was_killed_is_one_recorded_completion() -> None:
    # Given attempt 1 (pid 100) wrote its ok line and was killed; attempt 2 (pid 200) completed
    facts = facts_with_one_step(
        [claim(1, 100, 0, "error", "LeaseExpired", 10), claim(2, 200, 11, "complete", None, 12)],
        [ok_line(1, 100, 1), ok_line(2, 200, 11.5)],
    )
    # Then the completion is backed by attempt 2, and attempt 1's line is an explained duplicate
    assert checks.completion_backed(facts).passed
    explained = checks.executions_explained(facts)
    assert explained.passed
    assert explained.details["raw_duplicate_executions"] == 1


def test_two_ok_lines_from_the_completing_claim_fail_the_backing_check() -> None:
    facts = facts_with_one_step(
        [claim(1, 100, 0, "complete", None, 2)], [ok_line(1, 100, 0.5), ok_line(1, 100, 1)]
    )
    assert checks.completion_backed(facts).passed is False


def test_a_completion_without_its_ok_line_fails_the_backing_check() -> None:
    facts = facts_with_one_step([claim(1, 100, 0, "complete", None, 2)], [ok_line(1, 999, 1)])
    assert checks.completion_backed(facts).passed is False
    assert checks.executions_explained(facts).passed is False  # pid 999 never claimed it


def test_an_ok_line_whose_attempt_ended_in_a_handler_error_is_unexplained() -> None:
    facts = facts_with_one_step(
        [claim(1, 100, 0, "error", "RetryableError", 1), claim(2, 100, 2, "complete", None, 3)],
        [ok_line(1, 100, 0.5), ok_line(2, 100, 2.5)],
    )
    assert checks.executions_explained(facts).passed is False


def test_a_complete_step_with_two_completion_rows_fails_recorded_once() -> None:
    facts = facts_with_one_step([claim(1, 100, 0, "complete", None, 2)], [ok_line(1, 100, 1)])
    assert checks.recorded_once(facts).passed
    facts.completions[10] = 2
    assert checks.recorded_once(facts).passed is False


def test_a_missing_or_reordered_event_fails_events_match_history() -> None:
    facts = Facts()
    facts.history[("step", 10)] = [("pending", "in_progress"), ("in_progress", "complete")]
    facts.events[("step", 10)] = [("pending", "in_progress"), ("in_progress", "complete")]
    assert checks.events_match_history(facts).passed
    facts.events[("step", 10)] = [("in_progress", "complete"), ("pending", "in_progress")]
    assert checks.events_match_history(facts).passed is False


def test_the_completion_rate_excludes_cancelled_and_planned_to_fail_tasks() -> None:
    facts = Facts()
    for task_id, status in enumerate(["complete"] * 999 + ["error", "cancelled"], start=1):
        facts.tasks[task_id] = {"id": task_id, "status": status}
        facts.plans[task_id] = TaskPlan(task_id, "linear")
    facts.plans[1002] = TaskPlan(1002, "linear", {"step_1": Behaviour("permanent")})
    facts.tasks[1002] = {"id": 1002, "status": "error"}
    rate = checks.completion_rate(facts, 0.999)
    assert rate.details["eligible"] == 1000 and rate.details["failed"] == 1
    assert rate.passed  # 999 / 1000 = 99.9 %
    facts.tasks[1] = {"id": 1, "status": "error"}
    assert checks.completion_rate(facts, 0.999).passed is False


def test_a_step_in_progress_held_by_a_dead_worker_has_no_live_lease() -> None:
    row = {"id": 10, "task_id": 1, "claimed_by": "host-100-abc123", "lease_expires_at": T0}
    assert checks.leases_live([row], {100}, T0, 6.0).passed
    assert checks.leases_live([row], {200}, T0, 6.0).passed is False
    assert checks.leases_live([row], {100}, T0 + timedelta(seconds=10), 6.0).passed is False


def test_a_worker_that_never_started_is_reported_but_one_that_ran_must_not_exit() -> None:
    def exit_(cause: str) -> WorkerExit:
        return WorkerExit(slot=1, pid=5, cause=cause, at_seconds=1, lived_seconds=1, exit_code=1)

    assert checks.workers_survived([exit_("start_failed"), exit_("kill")]).passed
    assert checks.workers_survived([exit_("unexpected")]).passed is False
