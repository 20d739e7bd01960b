"""Concurrency limits (per step, per task key) and rate limits, on both backends (issue 14).

A fake clock moves time; claims and outcomes go through the facade as a worker's do. The
multi-process tests (kill -9, real time) are in test_flow_workers.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from tasker import FakeClock, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.attempts import ClaimedStep, Outcome
from tasker.exceptions import TemplateError, ValidationError
from tasker.store.database import Database

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def noop(step: Any) -> dict[str, Any]:
    return {}


def limited_step(limit: int = 2) -> Template:
    tpl = Template("limited")
    tpl.add_step("call", noop, concurrency={"limit": limit})
    return tpl


def per_customer(limit: int = 1) -> Template:
    """a -> b, at most `limit` tasks per customer_id running."""
    tpl = Template("per_customer", concurrency={"key": "customer_id", "limit": limit})
    tpl.add_step("a", noop)
    tpl.add_step("b", noop, depends_on=["a"])
    return tpl


def rate_limited(rate: str = "2/second") -> Template:
    tpl = Template("rated")
    tpl.add_step("call", noop, rate_limit=rate)
    return tpl


def make(database: Database, clock: FakeClock, *templates: Template) -> Tasker:
    registry = TemplateRegistry()
    for template in templates:
        registry.add(template)
    return Tasker(database, registry, clock=clock)


def complete(tasker: Tasker, claims: list[ClaimedStep]) -> None:
    tasker.record([Outcome(c.step_id, c.task_id, c.claim_token, results={}) for c in claims])


def reasons(tasker: Tasker, task_id: int) -> dict[str, str | None]:
    return {r.name: r.blocking_reason for r in tasker.readiness(task_id)}


def claim(tasker: Tasker, limit: int = 10) -> list[ClaimedStep]:
    return tasker.claim("w", limit, lease_seconds=30)


# --- per-step limit ---------------------------------------------------------------------


def test_a_step_limit_holds_and_a_finished_run_frees_its_slot(database: Database) -> None:
    # Given five tasks whose only step allows two runs at once
    clock = FakeClock(START)
    tasker = make(database, clock, limited_step(2))
    ids = [tasker.create_task(TaskRequest("limited"))[0] for _ in range(5)]

    # When a worker asks for ten steps, it gets two; the others wait for a slot
    first = claim(tasker)
    assert sorted(c.task_id for c in first) == ids[:2]
    assert [reasons(tasker, t)["call"] for t in ids[2:]] == ["concurrency_limit"] * 3
    # and they are not claimable (no claim/release loop), nor a time to wake up for
    assert claim(tasker) == []
    assert tasker.next_claimable_at() is None

    # When one run finishes, exactly one waiting step gets its slot
    complete(tasker, first[:1])
    second = claim(tasker)
    assert [c.task_id for c in second] == [ids[2]]
    assert claim(tasker) == []

    # And every task finishes once the slots keep freeing
    complete(tasker, [*first[1:], *second])
    while claims := claim(tasker):
        assert len(claims) <= 2
        complete(tasker, claims)
    assert [tasker.get_task(t)["status"] for t in ids] == ["complete"] * 5


def test_a_parked_claim_leaves_no_trace_in_history(database: Database) -> None:
    # Given a step limit of one and two tasks
    clock = FakeClock(START)
    tasker = make(database, clock, limited_step(1))
    a, _ = tasker.create_task(TaskRequest("limited"))
    b, _ = tasker.create_task(TaskRequest("limited"))

    # When both are claimed and the second is put back
    claims = claim(tasker)
    assert [c.task_id for c in claims] == [a]

    # Then the waiting step is pending with no attempt, no start time and no transition
    step = tasker.get_task(b)["steps"][0]
    assert (step["status"], step["attempts"], step["started_at"]) == ("pending", 0, None)
    transitions = tasker.transitions(b)
    assert [t["to_state"] for t in transitions if t.get("step_name") == "call"] == ["pending"]


def test_a_dead_workers_slot_frees_when_its_lease_is_reaped(database: Database) -> None:
    # Given a limit of one held by a worker that dies
    clock = FakeClock(START)
    tasker = make(database, clock, limited_step(1))
    a, _ = tasker.create_task(TaskRequest("limited"))
    b, _ = tasker.create_task(TaskRequest("limited"))
    assert [c.task_id for c in claim(tasker)] == [a]
    assert reasons(tasker, b)["call"] == "concurrency_limit"

    # When its lease runs out and the reaper takes the step back
    clock.advance(31)
    tasker.reap_expired_leases()

    # Then the slot is free again: one of the two steps (the retry or the waiting one) runs
    claims = claim(tasker)
    assert len(claims) == 1


def test_the_sweep_unparks_when_a_slot_was_freed_without_an_unpark(database: Database) -> None:
    # Given a parked step whose slot holder finished in a transaction that did not unpark
    # (as when the recorder dies between its commit and the unpark)
    clock = FakeClock(START)
    tasker = make(database, clock, limited_step(1))
    tasker.create_task(TaskRequest("limited"))
    b, _ = tasker.create_task(TaskRequest("limited"))
    held = claim(tasker)
    from tasker.engine import attempts

    tasker.write(
        lambda c: attempts.record_outcomes(
            c, [Outcome(s.step_id, s.task_id, s.claim_token, results={}) for s in held], now=START
        )
    )
    assert claim(tasker) == []

    # When the reaper runs, its sweep hands the free slot out
    tasker.reap_expired_leases()
    assert [c.task_id for c in claim(tasker)] == [b]


# --- per task key -----------------------------------------------------------------------


def test_a_task_key_limits_tasks_with_the_same_value(database: Database) -> None:
    # Given two tasks for customer 42 and one for customer 7, one task per customer at once
    clock = FakeClock(START)
    tasker = make(database, clock, per_customer(1))
    first, _ = tasker.create_task(TaskRequest("per_customer", {"customer_id": 42}))
    second, _ = tasker.create_task(TaskRequest("per_customer", {"customer_id": 42}))
    other, _ = tasker.create_task(TaskRequest("per_customer", {"customer_id": 7}))

    # When a worker claims, customer 42's second task waits; customer 7's runs
    claims = claim(tasker)
    assert sorted(c.task_id for c in claims) == [first, other]
    assert reasons(tasker, second)["a"] == "concurrency_limit"
    assert tasker.flow_waits(second) == [
        {"step": "a", "reason": "concurrency_limit", "key": "customer_id=42", "limit": 1,
         "running": 1, "running_tasks": [first]}
    ]  # fmt: skip

    # When the first task's step finishes, its next step and the waiting task compete for
    # the one slot; either way never two tasks of customer 42 run at once
    complete(tasker, claims)
    while claims := claim(tasker):
        by_customer = [tasker.get_task(c.task_id)["context"]["customer_id"] for c in claims]
        running_42 = {c.task_id for c, cid in zip(claims, by_customer, strict=True) if cid == 42}
        assert len(running_42) <= 1
        complete(tasker, claims)
    assert {tasker.get_task(t)["status"] for t in (first, second, other)} == {"complete"}


def test_steps_of_a_running_task_share_its_slot(database: Database) -> None:
    # Given a task key limit of one and a task with two independent steps
    clock = FakeClock(START)
    tpl = Template("fan", concurrency={"key": "customer_id", "limit": 1})
    tpl.add_step("x", noop)
    tpl.add_step("y", noop)
    tasker = make(database, clock, tpl)
    tasker.create_task(TaskRequest("fan", {"customer_id": "c"}))

    # Then both run at once: they are one task
    assert len(claim(tasker)) == 2


def test_a_missing_key_field_is_refused_and_nothing_is_stored(database: Database) -> None:
    clock = FakeClock(START)
    tasker = make(database, clock, per_customer(1))
    with pytest.raises(ValidationError, match="customer_id"):
        tasker.create_task(TaskRequest("per_customer", {"order": 1}))
    assert tasker.list_tasks() == []


# --- rate limits ------------------------------------------------------------------------


def test_a_rate_limit_spaces_claims_and_reserves_the_next_token(database: Database) -> None:
    # Given six tasks whose step may run twice a second (burst 1)
    clock = FakeClock(START)
    tasker = make(database, clock, rate_limited("2/second"))
    ids = [tasker.create_task(TaskRequest("rated"))[0] for _ in range(6)]

    # When a worker claims, one runs now and the others wait for their tokens
    first = claim(tasker)
    assert [c.task_id for c in first] == ids[:1]
    assert reasons(tasker, ids[1])["call"] == "rate_limited"
    assert claim(tasker) == []
    assert tasker.next_claimable_at() == START + timedelta(seconds=0.5)

    # Then each later token is claimed at its time, one per half second
    started = [START]
    for _ in range(5):
        clock.set(tasker.next_claimable_at())
        claims = claim(tasker)
        assert len(claims) == 1
        started.append(clock.now())
    gaps = [(b - a).total_seconds() for a, b in pairwise(started)]
    assert gaps == [0.5] * 5


def test_a_rate_limit_allows_a_burst_of_a_twentieth(database: Database) -> None:
    # Given 100 runs a second allowed, and 50 tasks waiting
    clock = FakeClock(START)
    tasker = make(database, clock, rate_limited("100/second"))
    for _ in range(50):
        tasker.create_task(TaskRequest("rated"))

    # Then five start at once, and then one every 10 ms
    assert len(claim(tasker, 50)) == 5
    clock.advance(0.1)
    assert len(claim(tasker, 50)) == 10


# --- definitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step_options", "template_options", "problem"),
    [
        ({"concurrency": {"limit": 0}}, {}, "concurrency.limit must be an integer from 1"),
        ({"concurrency": {"key": "x", "limit": 1}}, {}, "concurrency.key belongs on the template"),
        ({"rate_limit": "5/day"}, {}, "rate_limit must look like N/second"),
        ({"rate_limit": "0/second"}, {}, "rate_limit: N must be from 1"),
        ({}, {"concurrency": {"key": "customer_id"}}, "missing required key 'limit'"),
        ({}, {"concurrency": {"key": "a b", "limit": 1}}, "concurrency.key must name"),
        ({}, {"concurrency": {"limit": 2}}, "missing required key 'key'"),
    ],
)
def test_bad_flow_control_is_refused_naming_the_problem(
    step_options: dict[str, Any], template_options: dict[str, Any], problem: str
) -> None:
    tpl = Template("bad", **template_options)
    tpl.add_step("s", noop, **step_options)
    with pytest.raises(TemplateError, match=problem):
        tpl.build()
