"""The event catalog (and docs/events.md, generated from it) tells the truth: workflows
that publish every catalogued event, on both backends, publish exactly the declared
payload keys: none undeclared, none missing, no optional key that never appears."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tasker import Branch, FakeClock, PermanentError, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.attempts import Outcome
from tasker.events.catalog import BY_NAME, CATALOG
from tasker.runtime.runner import run_until_final
from tasker.store.database import Database

BACKOFF = {"base_seconds": 1.0, "max_seconds": 1.0, "jitter": 0}


def catalogue_templates() -> list[Template]:
    """``chain``: a -> b, both succeed. ``fragile``: ``root`` always fails (two
    attempts), ``leaf`` waits on it. ``once``: one step, one attempt. ``fork``: ``route``
    takes branch ``left`` and skips ``right``; ``gate`` waits for signal ``go``, and
    ``each`` maps over the signal's ``items``. ``nest``: a child workflow."""
    chain = Template("chain", defaults={"backoff": BACKOFF})

    @chain.step()
    def a(step: Any) -> dict[str, int]:
        return {"n": 1}

    @chain.step(depends_on=[a])
    def b(step: Any) -> dict[str, int]:
        return {"n": step.results["a"]["n"] + 1}

    fragile = Template("fragile", defaults={"max_attempts": 2, "backoff": BACKOFF})

    @fragile.step()
    def root(step: Any) -> None:
        raise RuntimeError("down")

    @fragile.step(depends_on=[root])
    def leaf(step: Any) -> None:
        raise PermanentError("never reached")

    once = Template("once", defaults={"max_attempts": 1})

    @once.step()
    def only(step: Any) -> None:
        return None

    fork = Template("fork")

    @fork.step(branches=["left", "right"])
    def route(step: Any) -> Branch:
        return Branch("left")

    @fork.step(depends_on=[route])
    def left(step: Any) -> None:
        return None

    @fork.step(depends_on=[route])
    def right(step: Any) -> None:
        return None

    fork.add_step("gate", None, depends_on=["left"], wait_for="go")

    @fork.step(depends_on=["gate"], map="gate.items")
    def each(step: Any) -> Any:
        return step.item

    # ``nest``: ``sub`` runs ``chain`` as a child task (child_task_created).
    nest = Template("nest")
    nest.add_step("sub", None, workflow={"name": "chain"})

    hourly = Template("hourly", schedules=[{"name": "every_hour", "cron": "0 * * * *"}])
    hourly.add_step("tick", "tasker.builtin_handlers:noop")

    return [chain, fragile, once, fork, nest, hourly]


@pytest.fixture
def tasker(database: Database) -> Iterator[Tasker]:
    registry = TemplateRegistry()
    for template in catalogue_templates():
        registry.add(template)
    yield Tasker(database, registry, clock=FakeClock())


def lose_the_lease(tasker: Tasker, template: str) -> None:
    """A worker claims the first step of a new task and is never heard of again."""
    assert isinstance(tasker.clock, FakeClock)
    task_id, _ = tasker.create_task(TaskRequest(template))
    (claim,) = tasker.claim("worker-gone", 1, lease_seconds=10, task_id=task_id)
    tasker.clock.advance(11)
    assert tasker.reap_expired_leases().recorded == [claim.step_id]


def emit_every_event(tasker: Tasker) -> list[dict[str, Any]]:
    """Drive tasks down every path the catalog names; returns all the events."""
    # A run that completes: started, completed, task_created, steps_ready, finalized
    done, _ = tasker.create_task(TaskRequest("chain"))
    assert run_until_final(tasker, done) == "complete"
    # A step fails, is retried, fails for good: retry_scheduled, failed, task.failed
    failed, _ = tasker.create_task(TaskRequest("fragile"))
    assert run_until_final(tasker, failed) == "error"
    # An operator retries the task (retry_requested, both) and it fails again
    tasker.retry_task(failed, actor="ops", reason="gateway back")
    assert run_until_final(tasker, failed) == "error"
    # The failed step is resolved by hand, so its child runs (task.retry_requested) and
    # fails; resolving that last open step resolves the task (task.resolved_manually)
    tasker.resolve_step(failed, "root", reason="done by hand")
    assert run_until_final(tasker, failed) == "error"
    tasker.resolve_step(failed, "leaf", reason="not needed", actor="ops")
    assert tasker.task_status(failed) == "resolved_manually"
    # Leases expire, with attempts left and without: step_lease_expired, with a reason
    lose_the_lease(tasker, "chain")
    lose_the_lease(tasker, "once")
    # A branch not taken is skipped; a signal completes the step waiting for it
    forked, _ = tasker.create_task(TaskRequest("fork"))
    assert run_until_final(tasker, forked) == "in_progress"
    tasker.signal_task(forked, "go", {"items": [1, 2]}, actor="ops")
    # whose payload is a list the map step expands over: map_expanded
    assert run_until_final(tasker, forked) == "complete"
    # A child workflow: child_task_created, and the child's task_created names its parent
    nested, _ = tasker.create_task(TaskRequest("nest"))
    assert run_until_final(tasker, nested) == "complete"
    # A task cancelled while a step runs: the pending step is cancelled at once, the
    # running one when it reports (its result discarded)
    running, _ = tasker.create_task(TaskRequest("chain"))
    (claim,) = tasker.claim("worker-a", 1, task_id=running)
    # A delayed task with a priority: task_created says when and how urgent (and it is
    # cancelled before its start, its steps never claimed)
    later, _ = tasker.create_task(TaskRequest("once", delay_seconds=60, priority=5))
    tasker.cancel_task(later)
    # A schedule's tick fires (schedule.fired); an operator pauses and resumes it
    assert isinstance(tasker.clock, FakeClock)
    tasker.sync_schedules()
    tasker.clock.advance(3600)
    assert len(tasker.fire_schedules()) == 1
    tasker.set_schedule_paused(
        "default", "hourly", "every_hour", paused=True, actor="ops", reason="x"
    )
    tasker.set_schedule_paused(
        "default", "hourly", "every_hour", paused=False, actor="ops", reason="y"
    )
    tasker.cancel_task(running, actor="ops", reason="customer left")
    tasker.record([Outcome(claim.step_id, running, claim.claim_token, results={"n": 1})])
    return tasker.events()


def keys_by_event(events: list[dict[str, Any]]) -> dict[str, list[set[str]]]:
    found: dict[str, list[set[str]]] = {}
    for event in events:
        found.setdefault(event["name"], []).append(set(event["payload"]))
    return found


def catalog_problems(events: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """``{event: {problem: keys}}`` for every way the events and the catalog disagree."""
    published = keys_by_event(events)
    problems: dict[str, dict[str, list[str]]] = {}
    for name in sorted(set(published) - set(BY_NAME)):
        problems[name] = {"published but not in the catalog": []}
    for spec in CATALOG:
        instances = published.get(spec.name)
        if not instances:
            problems[spec.name] = {"in the catalog but never published": []}
            continue
        found = {
            # a key no instance may carry
            "undeclared": set().union(*instances) - set(spec.keys),
            # a key every instance must carry, missing from one
            "missing from some": set(spec.payload) - set[str].intersection(*instances),
            # an optional key that never appears is a promise nothing keeps
            "optional but never published": set(spec.optional) - set().union(*instances),
        }
        if any(found.values()):
            problems[spec.name] = {what: sorted(keys) for what, keys in found.items() if keys}
    return problems


def test_every_event_publishes_exactly_the_catalogued_payload(tasker: Tasker) -> None:
    # Given workflows that publish every event the catalog names
    events = emit_every_event(tasker)
    # Then each event's payload keys are exactly those the catalog declares
    assert catalog_problems(events) == {}
