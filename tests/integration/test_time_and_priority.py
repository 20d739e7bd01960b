"""Delayed start (run_at, delay_seconds) and claim priority, on both backends (issue 14).

A fake clock moves time; claims go through the facade as a worker's do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasker import FakeClock, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.attempts import Outcome
from tasker.exceptions import ValidationError
from tasker.store.database import Database

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def noop(step: Any) -> dict[str, Any]:
    return {}


def chain(name: str = "chain", priority: int = 0) -> Template:
    """a -> b."""
    tpl = Template(name, priority=priority)
    tpl.add_step("a", noop)
    tpl.add_step("b", noop, depends_on=["a"])
    return tpl


def single(name: str, priority: int = 0) -> Template:
    tpl = Template(name, priority=priority)
    tpl.add_step("only", noop)
    return tpl


def make(database: Database, clock: FakeClock, *templates: Template) -> Tasker:
    registry = TemplateRegistry()
    for template in templates:
        registry.add(template)
    return Tasker(database, registry, clock=clock)


def complete(tasker: Tasker, claims: list[Any]) -> None:
    tasker.record([Outcome(c.step_id, c.task_id, c.claim_token, results={}) for c in claims])


def reasons(tasker: Tasker, task_id: int) -> dict[str, str | None]:
    return {r.name: r.blocking_reason for r in tasker.readiness(task_id)}


# --- delayed start ------------------------------------------------------------------------


def test_no_step_starts_before_run_at(database: Database) -> None:
    # Given a task to start in ten minutes
    clock = FakeClock(START)
    tasker = make(database, clock, chain())
    run_at = START + timedelta(minutes=10)
    task_id, _ = tasker.create_task(TaskRequest("chain", run_at=run_at))

    # Then its root is `scheduled`, nothing can be claimed, and the task JSON says when
    assert reasons(tasker, task_id) == {"a": "scheduled", "b": "dependencies_not_satisfied"}
    assert tasker.claim("w", 10, lease_seconds=30) == []
    assert tasker.get_task(task_id)["run_at"] == "2026-01-01T12:10:00Z"
    assert tasker.next_claimable_at() == run_at

    # When the clock reaches one microsecond before run_at, still nothing
    clock.advance(600 - 1e-6)
    assert tasker.claim("w", 10, lease_seconds=30) == []

    # At run_at the root is ready and claimed
    clock.advance(1e-6)
    assert reasons(tasker, task_id)["a"] is None
    claims = tasker.claim("w", 10, lease_seconds=30)
    assert [c.name for c in claims] == ["a"]
    complete(tasker, claims)
    assert [c.name for c in tasker.claim("w", 10, lease_seconds=30)] == ["b"]


def test_delay_seconds_counts_from_creation(database: Database) -> None:
    clock = FakeClock(START)
    tasker = make(database, clock, chain())
    task_id, _ = tasker.create_task(TaskRequest("chain", delay_seconds=30))
    assert tasker.get_task(task_id)["run_at"] == "2026-01-01T12:00:30Z"
    clock.advance(29)
    assert tasker.claim("w", 1, lease_seconds=30) == []
    clock.advance(1)
    assert len(tasker.claim("w", 1, lease_seconds=30)) == 1


def test_a_naive_run_at_is_utc_and_a_past_one_starts_at_once(database: Database) -> None:
    clock = FakeClock(START)
    tasker = make(database, clock, chain())
    naive, _ = tasker.create_task(TaskRequest("chain", run_at=datetime(2026, 1, 1, 13, 0)))
    assert tasker.get_task(naive)["run_at"] == "2026-01-01T13:00:00Z"
    past, _ = tasker.create_task(TaskRequest("chain", run_at=START - timedelta(days=1)))
    assert reasons(tasker, past)["a"] is None
    assert [c.task_id for c in tasker.claim("w", 5, lease_seconds=30)] == [past]


def test_resolving_a_root_by_hand_does_not_start_its_children_early(database: Database) -> None:
    # Given a delayed task whose root an operator resolves before its start
    clock = FakeClock(START)
    tasker = make(database, clock, chain())
    task_id, _ = tasker.create_task(TaskRequest("chain", delay_seconds=60))
    tasker.resolve_step(task_id, "a", reason="done elsewhere")

    # Then the child waits for the start time too
    assert reasons(tasker, task_id)["b"] == "scheduled"
    assert tasker.claim("w", 5, lease_seconds=30) == []
    clock.advance(60)
    assert [c.name for c in tasker.claim("w", 5, lease_seconds=30)] == ["b"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"run_at": START, "delay_seconds": 5}, "not both"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": float("nan")}, "delay_seconds"),
        ({"delay_seconds": True}, "delay_seconds"),
        ({"delay_seconds": 1e12}, "delay_seconds"),
        ({"run_at": "2026-01-01"}, "run_at"),
        ({"priority": 1.5}, "priority"),
        ({"priority": 2**31}, "priority"),
        ({"priority": True}, "priority"),
    ],
)
def test_bad_times_and_priorities_are_refused_and_nothing_is_stored(
    database: Database, changes: dict[str, Any], message: str
) -> None:
    tasker = make(database, FakeClock(START), chain())
    with pytest.raises(ValidationError, match=message):
        tasker.create_task(TaskRequest("chain", **changes))
    assert tasker.list_tasks() == []


# --- priority -----------------------------------------------------------------------------


def test_claims_take_the_highest_priority_then_the_oldest(database: Database) -> None:
    # Given tasks created one second apart with priorities 0, 5 (template), 5, -1, 9
    clock = FakeClock(START)
    tasker = make(database, clock, single("low"), single("high", priority=5))
    created = []
    for name, priority in [("low", None), ("high", None), ("low", 5), ("low", -1), ("high", 9)]:
        task_id, _ = tasker.create_task(TaskRequest(name, priority=priority))
        created.append(task_id)
        clock.advance(1)

    # Then the task JSON shows each one's priority
    assert [tasker.get_task(t)["priority"] for t in created] == [0, 5, 5, -1, 9]

    # And claims come highest first, ties oldest first (a batch is the first N in that order)
    assert {c.task_id for c in tasker.claim("w", 2, lease_seconds=30)} == {created[4], created[1]}
    order = [c.task_id for _ in range(3) for c in tasker.claim("w", 1, lease_seconds=30)]
    assert order == [created[2], created[0], created[3]]


def test_a_retry_keeps_its_priority_and_waits_its_backoff(database: Database) -> None:
    clock = FakeClock(START)
    tasker = make(database, clock, single("low"), single("high", priority=3))
    high, _ = tasker.create_task(TaskRequest("high"))
    [claim] = tasker.claim("w", 1, lease_seconds=30)
    error = {"class": "E", "message": "m", "traceback": None}
    tasker.record([Outcome(claim.step_id, high, claim.claim_token, error=error)])
    low, _ = tasker.create_task(TaskRequest("low"))
    # During the backoff the low one runs; once the retry is due it goes first again
    assert [c.task_id for c in tasker.claim("w", 1, lease_seconds=30)] == [low]
    tasker.create_task(TaskRequest("low"))
    clock.advance(3600)
    assert [c.task_id for c in tasker.claim("w", 1, lease_seconds=30)] == [high]


def test_priority_is_strict_a_low_step_waits_while_higher_ones_keep_coming(
    database: Database,
) -> None:
    # Given a low-priority task that has waited the longest
    clock = FakeClock(START)
    tasker = make(database, clock, single("low"), single("high", priority=1))
    low, _ = tasker.create_task(TaskRequest("low"))

    # When a higher-priority task arrives before each claim, for 50 rounds
    for _ in range(50):
        clock.advance(60)
        tasker.create_task(TaskRequest("high"))
        [claim] = tasker.claim("w", 1, lease_seconds=30)
        # Then the higher one is claimed every time: priority is strict, no ageing
        assert claim.task_id != low
        complete(tasker, [claim])

    # And the low one runs as soon as nothing higher is ready
    assert [c.task_id for c in tasker.claim("w", 1, lease_seconds=30)] == [low]


def test_map_instances_and_children_inherit_the_task_priority(database: Database) -> None:
    clock = FakeClock(START)
    tpl = Template("fan", priority=2)
    tpl.add_step("split", noop)
    tpl.add_step("each", noop, depends_on=["split"], map="split.items")
    plain = single("plain", priority=1)
    tasker = make(database, clock, tpl, plain)
    fan, _ = tasker.create_task(TaskRequest("fan"))
    [split] = tasker.claim("w", 1, lease_seconds=30)
    tasker.record([Outcome(split.step_id, fan, split.claim_token, results={"items": [1, 2]})])
    tasker.create_task(TaskRequest("plain"))
    claimed = [(c.task_id, c.name) for c in tasker.claim("w", 3, lease_seconds=30)]
    assert claimed[:2] == [(fan, "each[0]"), (fan, "each[1]")]
