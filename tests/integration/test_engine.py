"""The engine end to end, in-process, on both backends, with a fake clock.

Each test builds a template with in-process handlers, runs the task with the
in-process runner (the same claim/execute/record path a worker uses) and checks
what a user would see: final states, attempts, results, history and events.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tasker import FakeClock, PermanentError, RetryableError, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.attempts import Outcome
from tasker.exceptions import IdempotencyConflict, InvalidTransition, ValidationError
from tasker.runtime.runner import run_until_final
from tasker.store.database import Database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_tasker(database: Database, clock: FakeClock, *templates: Template) -> Tasker:
    registry = TemplateRegistry()
    for template in templates:
        registry.add(template)
    return Tasker(database, registry, clock=clock)


def no_jitter(**extra: Any) -> dict[str, Any]:
    return {"backoff": {"base_seconds": 1.0, "max_seconds": 60.0, "jitter": 0.0}, **extra}


class Calls:
    """Counts handler executions per step name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, name: str) -> int:
        self.counts[name] += 1
        return self.counts[name]


@pytest.fixture
def calls() -> Iterator[Calls]:
    yield Calls()


def diamond(calls: Calls, *, flaky_times: int = 0) -> Template:
    tpl = Template("diamond", defaults=no_jitter(max_attempts=3))

    @tpl.step()
    def a(step: Any) -> dict[str, Any]:
        calls("a")
        return {"value": step.context["n"]}

    @tpl.step(depends_on=[a])
    def b(step: Any) -> dict[str, Any]:
        if calls("b") <= flaky_times:
            raise RuntimeError("flaky")
        return {"value": step.results["a"]["value"] + 1}

    @tpl.step(depends_on=[a])
    def c(step: Any) -> dict[str, Any]:
        calls("c")
        return {"value": step.results["a"]["value"] * 10}

    @tpl.step(depends_on=[b, c])
    def d(step: Any) -> dict[str, Any]:
        calls("d")
        return {"sum": step.results["b"]["value"] + step.results["c"]["value"]}

    return tpl


def steps_by_name(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in task["steps"]}


def test_diamond_with_a_flaky_step_completes_and_passes_results(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    # Given a diamond whose step b fails twice before succeeding
    tasker = make_tasker(database, clock, diamond(calls, flaky_times=2))
    task_id, created = tasker.create_task(TaskRequest("diamond", {"n": 4}))
    assert created
    # When it runs to the end
    status = run_until_final(tasker, task_id)
    # Then it completes, b took three attempts, every other step ran once
    assert status == "complete"
    task = tasker.get_task(task_id)
    steps = steps_by_name(task)
    assert {n: s["attempts"] for n, s in steps.items()} == {"a": 1, "b": 3, "c": 1, "d": 1}
    assert calls.counts == Counter({"a": 1, "b": 3, "c": 1, "d": 1})
    assert steps["d"]["results"] == {"sum": 5 + 40}
    assert steps["d"]["depends_on"] == ["b", "c"]
    assert task["completed_at"] is not None
    # and the history holds every change, each with exactly one state event
    transitions = tasker.transitions(task_id)
    state_events = [
        e for e in tasker.events(task_id=task_id) if e["name"].startswith(("task.", "step."))
    ]
    non_initial = [t for t in transitions if t["from_state"] is not None]
    assert len(state_events) == len(non_initial)
    b_states = [t["to_state"] for t in transitions if t["step_name"] == "b"]
    assert b_states == [
        "pending",
        "in_progress",
        "error",
        "in_progress",
        "error",
        "in_progress",
        "complete",
    ]
    names = Counter(e["name"] for e in tasker.events(task_id=task_id))
    assert names["step.retry_scheduled"] == 2
    assert names["task.completed"] == 1
    assert names["workflow.task_finalized"] == 1


def test_backoff_follows_the_formula_and_is_stored(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    # Given a diamond whose b fails twice, no jitter, base 1 s
    tasker = make_tasker(database, clock, diamond(calls, flaky_times=2))
    task_id, _ = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    run_until_final(tasker, task_id)
    # Then the retries were scheduled 2 s and 4 s after each failure (base * 2**n)
    retries = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.retry_scheduled"]
    failed_at = [e["created_at"] for e in retries]
    scheduled = [e["payload"]["next_retry_at"] for e in retries]
    from datetime import datetime

    gaps = [
        (
            datetime.fromisoformat(s) - datetime.fromisoformat(f.replace("Z", "+00:00"))
        ).total_seconds()
        for s, f in zip(scheduled, failed_at, strict=True)
    ]
    assert gaps == [2.0, 4.0]


def test_retry_after_from_the_handler_is_honoured(database: Database, clock: FakeClock) -> None:
    tpl = Template("busy", defaults=no_jitter(max_attempts=2))

    @tpl.step()
    def call(step: Any) -> dict[str, Any]:
        if step.attempt == 1:
            raise RetryableError("gateway busy", retry_after=30)
        return {"ok": True}

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("busy"))
    start = clock.now()
    assert run_until_final(tasker, task_id) == "complete"
    step = steps_by_name(tasker.get_task(task_id))["call"]
    assert step["attempts"] == 2
    # the clock had to move 30 s for the second attempt, not the 2 s of the formula
    assert clock.now() - start == timedelta(seconds=30)


def test_always_failing_step_exhausts_attempts_and_fails_the_task(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("doomed", defaults=no_jitter(max_attempts=4))
    ran: list[str] = []

    @tpl.step()
    def first(step: Any) -> None:
        raise ValueError("always broken")

    @tpl.step(depends_on=[first])
    def second(step: Any) -> None:
        ran.append("second")

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("doomed"))
    assert run_until_final(tasker, task_id) == "error"
    steps = steps_by_name(tasker.get_task(task_id))
    assert steps["first"]["status"] == "error"
    assert steps["first"]["attempts"] == 4
    assert steps["first"]["error"]["class"] == "ValueError"
    assert "always broken" in steps["first"]["error"]["message"]
    assert "Traceback" in steps["first"]["error"]["traceback"]
    assert steps["second"]["status"] == "pending"
    assert ran == []
    context = tasker.execution_context(task_id)
    assert context.execution_status == "blocked_by_failures"
    readiness = {r.name: r.blocking_reason for r in tasker.readiness(task_id)}
    assert readiness == {"first": "retries_exhausted", "second": "dependencies_not_satisfied"}


def test_permanent_error_makes_exactly_one_attempt(database: Database, clock: FakeClock) -> None:
    tpl = Template("declined", defaults=no_jitter(max_attempts=5))

    @tpl.step()
    def charge(step: Any) -> None:
        raise PermanentError("card declined")

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("declined"))
    assert run_until_final(tasker, task_id) == "error"
    step = steps_by_name(tasker.get_task(task_id))["charge"]
    assert (step["attempts"], step["retryable"], step["error"]["class"]) == (
        1,
        False,
        "PermanentError",
    )
    assert [r.blocking_reason for r in tasker.readiness(task_id)] == ["not_retryable"]


def test_independent_branch_still_runs_after_a_permanent_failure(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("branches", defaults=no_jitter())

    @tpl.step()
    def bad(step: Any) -> None:
        raise PermanentError("no")

    @tpl.step()
    def good(step: Any) -> dict[str, Any]:
        return {"ok": 1}

    @tpl.step(depends_on=[good])
    def after_good(step: Any) -> dict[str, Any]:
        return {"ok": 2}

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("branches"))
    assert run_until_final(tasker, task_id) == "error"
    steps = steps_by_name(tasker.get_task(task_id))
    assert steps["after_good"]["status"] == "complete"


def test_sync_handler_timeout_fails_the_attempt_and_its_late_result_is_refused(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("slow", defaults=no_jitter(max_attempts=2, timeout_seconds=0.2))

    @tpl.step()
    def crawl(step: Any) -> dict[str, Any]:
        if step.attempt == 1:
            time.sleep(0.6)
        return {"attempt": step.attempt}

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("slow"))
    assert run_until_final(tasker, task_id) == "complete"
    time.sleep(0.5)  # let the abandoned first attempt's thread finish
    step = steps_by_name(tasker.get_task(task_id))["crawl"]
    assert step["attempts"] == 2
    assert step["results"] == {"attempt": 2}
    failures = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.retry_scheduled"]
    assert [e["payload"]["error_class"] for e in failures] == ["TimeoutError"]


def test_async_handler_timeout_cancels_it(database: Database, clock: FakeClock) -> None:
    import asyncio

    tpl = Template("slow_async", defaults=no_jitter(max_attempts=1, timeout_seconds=0.1))
    finished: list[int] = []

    @tpl.step()
    async def wait(step: Any) -> None:
        await asyncio.sleep(5)
        finished.append(1)

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("slow_async"))
    started = time.monotonic()
    assert run_until_final(tasker, task_id) == "error"
    assert time.monotonic() - started < 3
    assert finished == []


def test_stale_claim_is_refused_so_a_step_completes_once(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    # Given a step claimed by worker A whose lease then expires
    tasker = make_tasker(database, clock, diamond(calls))
    task_id, _ = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    (claim_a,) = tasker.claim("worker-a", 1, lease_seconds=10)
    clock.advance(11)
    reaped = tasker.reap_expired_leases()
    assert reaped.recorded == [claim_a.step_id]
    # and worker B claims the retry (after the backoff)
    clock.advance(60)
    (claim_b,) = tasker.claim("worker-b", 1, lease_seconds=10)
    assert claim_b.step_id == claim_a.step_id and claim_b.attempt == 2
    # When A finally reports success with its old token
    late = tasker.record([Outcome(claim_a.step_id, task_id, claim_a.claim_token, results={"x": 1})])
    # Then it is refused, and B's result is the one kept
    assert late.stale == [claim_a.step_id]
    tasker.record([Outcome(claim_b.step_id, task_id, claim_b.claim_token, results={"x": 2})])
    step = steps_by_name(tasker.get_task(task_id))["a"]
    assert (step["status"], step["results"], step["attempts"]) == ("complete", {"x": 2}, 2)
    events = [e["name"] for e in tasker.events(task_id=task_id) if e["step_name"] == "a"]
    assert events.count("step.completed") == 1
    assert "workflow.step_lease_expired" in events


def test_cancel_mid_run_discards_the_running_steps_result(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    task_id, _ = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    (claimed,) = tasker.claim("w", 1)
    assert tasker.cancel_task(task_id, actor="ops", reason="customer asked") is True
    assert tasker.cancel_task(task_id, actor="ops") is False  # already there: a no-op
    tasker.record([Outcome(claimed.step_id, task_id, claimed.claim_token, results={"v": 1})])
    task = tasker.get_task(task_id)
    assert task["status"] == "cancelled"
    assert {s["status"] for s in task["steps"]} == {"cancelled"}
    assert steps_by_name(task)["a"]["results"] is None
    task_history = [t for t in tasker.transitions(task_id) if t["entity"] == "task"]
    assert [t["to_state"] for t in task_history] == ["pending", "in_progress", "cancelled"]
    assert task_history[-1]["actor"] == "ops"
    assert task_history[-1]["reason"] == "customer asked"
    assert tasker.claim("w", 10) == []
    with pytest.raises(InvalidTransition):
        tasker.retry_task(task_id)


def test_manual_retry_of_a_failed_task_reopens_steps_with_attempts_reset(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("fixable", defaults=no_jitter(max_attempts=2))
    broken = {"yes": True}

    @tpl.step()
    def fetch(step: Any) -> dict[str, Any]:
        if broken["yes"]:
            raise RuntimeError("upstream down")
        return {"ok": True}

    @tpl.step(depends_on=[fetch])
    def store(step: Any) -> dict[str, Any]:
        return {"stored": True}

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("fixable"))
    assert run_until_final(tasker, task_id) == "error"
    broken["yes"] = False
    assert tasker.retry_task(task_id, actor="ops", reason="upstream fixed") == ["fetch"]
    assert tasker.task_status(task_id) == "in_progress"
    assert run_until_final(tasker, task_id) == "complete"
    steps = steps_by_name(tasker.get_task(task_id))
    assert steps["fetch"]["attempts"] == 1  # reset by the manual retry
    fetch_states = [t["to_state"] for t in tasker.transitions(task_id) if t["step_name"] == "fetch"]
    assert fetch_states[-3:] == ["pending", "in_progress", "complete"]
    with pytest.raises(InvalidTransition):
        tasker.retry_task(task_id)


def test_resolving_a_failed_step_lets_its_dependents_run(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("resolvable", defaults=no_jitter(max_attempts=1))

    @tpl.step()
    def lookup(step: Any) -> None:
        raise PermanentError("record missing")

    @tpl.step(depends_on=[lookup])
    def notify(step: Any) -> dict[str, Any]:
        return {"got": step.results["lookup"]}

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("resolvable"))
    assert run_until_final(tasker, task_id) == "error"
    tasker.resolve_step(task_id, "lookup", reason="entered by hand", actor="ops", results={"id": 9})
    assert tasker.task_status(task_id) == "in_progress"
    assert run_until_final(tasker, task_id) == "complete"
    steps = steps_by_name(tasker.get_task(task_id))
    assert steps["lookup"]["status"] == "resolved_manually"
    assert steps["notify"]["results"] == {"got": {"id": 9}}
    resolved = [t for t in tasker.transitions(task_id) if t["to_state"] == "resolved_manually"]
    assert resolved[0]["actor"] == "ops" and resolved[0]["reason"] == "entered by hand"
    with pytest.raises(InvalidTransition):
        tasker.resolve_step(task_id, "notify", reason="no")


def test_manual_step_retry_requires_a_failed_step(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    task_id, _ = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    with pytest.raises(
        InvalidTransition, match=r"step 'a' of task .* is 'pending': only a failed step"
    ):
        tasker.retry_step(task_id, "a")


def test_idempotent_creation_returns_the_same_task_or_conflicts(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    first = tasker.create_task(TaskRequest("diamond", {"n": 1}, idempotency_key="order-1"))
    again = tasker.create_task(TaskRequest("diamond", {"n": 1}, idempotency_key="order-1"))
    assert first == (first[0], True) and again == (first[0], False)
    with pytest.raises(IdempotencyConflict):
        tasker.create_task(TaskRequest("diamond", {"n": 2}, idempotency_key="order-1"))
    other, created = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    assert created and other != first[0]


def test_invalid_context_writes_nothing_and_lists_every_violation(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template(
        "typed",
        context_schema={
            "type": "object",
            "required": ["order_id", "email"],
            "properties": {"order_id": {"type": "integer"}, "email": {"type": "string"}},
        },
    )
    tpl.add_step("only", "tasker.builtin_handlers:noop")
    tasker = make_tasker(database, clock, tpl)
    with pytest.raises(ValidationError) as caught:
        tasker.create_task(TaskRequest("typed", {"order_id": "seven"}))
    assert len(caught.value.errors) == 2
    assert tasker.list_tasks() == []


def test_task_json_has_the_contract_shape(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    task_id, _ = tasker.create_task(
        TaskRequest("diamond", {"n": 1}, tags=("vip",), initiator="web", reason="order")
    )
    task = tasker.get_task(task_id)
    assert list(task) == [
        "id",
        "namespace",
        "name",
        "version",
        "status",
        "context",
        "idempotency_key",
        "initiator",
        "source_system",
        "reason",
        "tags",
        "created_at",
        "completed_at",
        "run_at",
        "priority",
        "parent_task_id",
        "parent_step_id",
        "steps",
    ]
    assert task["created_at"] == "2026-01-01T00:00:00Z"
    assert (task["run_at"], task["priority"]) == (None, 0)
    assert list(task["steps"][0]) == [
        "id",
        "name",
        "status",
        "depends_on",
        "attempts",
        "max_attempts",
        "retryable",
        "results",
        "error",
        "next_retry_at",
        "started_at",
        "completed_at",
        # dynamic workflows (DESIGN.md, Part 3), after the contract's keys
        "join",
        "branches",
        "wait_for",
        "map",
        "index",
        "workflow",
        "child_task_id",
        "group",
        "instances",
    ]
    assert (task["tags"], task["initiator"], task["status"]) == (["vip"], "web", "pending")


@pytest.mark.parametrize(
    "context", [{"a": "x\u0000y"}, {"a": float("nan")}, {"a": [1, float("inf")]}]
)
def test_context_a_database_cannot_store_is_refused_on_both_backends(
    database: Database, clock: FakeClock, calls: Calls, context: dict[str, Any]
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    with pytest.raises(ValidationError, match="context is not storable"):
        tasker.create_task(TaskRequest("diamond", {"n": 1, **context}))
    assert tasker.list_tasks() == []


def test_a_reason_a_database_cannot_store_is_refused_and_changes_nothing(
    database: Database, clock: FakeClock
) -> None:
    # Given a failed task (invalid UTF-8 from a command line arrives as a lone surrogate)
    tpl = Template("declined")

    @tpl.step()
    def charge(step: Any) -> None:
        raise PermanentError("card declined")

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("declined"))
    assert run_until_final(tasker, task_id) == "error"
    history = tasker.transitions(task_id)
    bad = "paid by phone \udcff"
    # When an operator acts with a reason no database can store, Then each is refused
    for act in (
        lambda: tasker.cancel_task(task_id, reason=bad),
        lambda: tasker.retry_task(task_id, reason=bad),
        lambda: tasker.retry_step(task_id, "charge", reason=bad),
        lambda: tasker.resolve_step(task_id, "charge", reason=bad),
    ):
        with pytest.raises(ValidationError, match="reason is not storable"):
            act()
    # And a lookup by such a name is refused too, rather than failing in the driver
    with pytest.raises(ValidationError, match="not valid Unicode"):
        tasker.list_tasks(namespace="default\udcff")
    # And nothing changed
    assert tasker.task_status(task_id) == "error" and tasker.transitions(task_id) == history


def test_invalid_transition_message_names_plain_states(
    database: Database, clock: FakeClock, calls: Calls
) -> None:
    tasker = make_tasker(database, clock, diamond(calls))
    task_id, _ = tasker.create_task(TaskRequest("diamond", {"n": 1}))
    tasker.cancel_task(task_id)
    with pytest.raises(InvalidTransition) as caught:
        tasker.resolve_step(task_id, "a", reason="late")
    assert "cannot go from 'cancelled' to 'resolved_manually'" in str(caught.value)
