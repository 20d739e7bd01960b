"""Workers serve the handlers they loaded; readiness says when no live worker can run a step.

In-process on both backends, with a fake clock: workers are registered the way a starting
worker registers itself (``Tasker.register_worker``). The real worker processes, the CLI
and the API are in tests/acceptance/test_worker_handlers.py.
"""

from __future__ import annotations

import pytest

from tasker import FakeClock, Tasker, TaskRequest
from tasker.definitions import HandlerCoverage, TemplateRegistry
from tasker.definitions.parse import parse_template
from tasker.engine.coverage import NO_WORKER_FOR_HANDLER
from tasker.store.database import Database

NOOP = "tasker.builtin_handlers:noop"
CHARGE = "shop_handlers:charge"  # not importable here: what a worker without it sees

ORDER = {
    "namespace": "shop",
    "name": "order",
    "steps": [
        {"name": "charge", "handler": CHARGE},
        {"name": "ship", "handler": NOOP, "depends_on": ["charge"]},
    ],
}
PING = {"namespace": "ops", "name": "ping", "steps": [{"name": "ping", "handler": NOOP}]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tasker(database: Database, clock: FakeClock) -> Tasker:
    registry = TemplateRegistry()
    for data in (ORDER, PING):
        registry.add(parse_template(data, check_handlers=False), check_handlers=False)
    return Tasker(database, registry, clock=clock)


def register(
    tasker: Tasker,
    worker_id: str,
    handlers: tuple[str, ...],
    *,
    namespaces: tuple[str, ...] = (),
    lease_seconds: float = 30.0,
) -> None:
    tasker.register_worker(
        worker_id,
        hostname="test",
        pid=1,
        namespaces=list(namespaces),
        concurrency=1,
        lease_seconds=lease_seconds,
        handlers=HandlerCoverage(handlers=handlers),
    )


def reasons(tasker: Tasker, task_id: int) -> dict[str, str | None]:
    return {row.name: row.blocking_reason for row in tasker.readiness(task_id)}


def test_a_worker_claims_only_steps_whose_handler_it_loaded(tasker: Tasker) -> None:
    # Given an order (its charge handler missing here) created before a ping
    order, _ = tasker.create_task(TaskRequest("order", namespace="shop"))
    # (a worker that loaded nothing has no work, now or later; one with charge has)
    assert not tasker.has_live_work(handlers=[]) and tasker.has_live_work(handlers=[CHARGE])
    assert tasker.next_claimable_at(handlers=[NOOP]) is None
    assert tasker.next_claimable_at(handlers=[CHARGE]) is not None
    ping, _ = tasker.create_task(TaskRequest("ping", namespace="ops"))

    # When a worker that loaded only the no-op handler claims
    claimed = tasker.claim("w", 10, handlers=[NOOP])

    # Then it takes the ping and leaves the older charge pending, its attempts untouched
    assert [(c.task_id, c.name) for c in claimed] == [(ping, "ping")]
    charge = tasker.get_task(order)["steps"][0]
    assert (charge["status"], charge["attempts"]) == ("pending", 0)
    # A worker that loaded nothing claims nothing; the in-process runner (no filter) does
    assert tasker.claim("w2", 10, handlers=[]) == []
    assert [c.name for c in tasker.claim("runner", 10)] == ["charge"]


def test_no_live_worker_for_a_handler_is_a_blocking_reason_only_while_a_worker_is_live(
    tasker: Tasker, clock: FakeClock
) -> None:
    order, _ = tasker.create_task(TaskRequest("order", namespace="shop"))
    # Given no worker at all: readiness is the contract's (ready, no reason)
    assert reasons(tasker, order) == {"charge": None, "ship": "dependencies_not_satisfied"}

    # When the only live worker lacks the charge handler
    register(tasker, "old", (NOOP,), lease_seconds=10)

    # Then charge says so, and stays ready for execution by the rules
    rows = {row.name: row for row in tasker.readiness(order)}
    assert rows["charge"].blocking_reason == NO_WORKER_FOR_HANDLER
    assert rows["charge"].ready_for_execution
    assert rows["ship"].blocking_reason == "dependencies_not_satisfied"
    assert tasker.execution_context(order).ready_steps == 1

    # When that worker misses its lease (no heartbeat for longer than 10 s)
    clock.advance(10.5)
    # Then no worker is live: back to the contract's readiness
    assert reasons(tasker, order)["charge"] is None


def test_a_live_worker_serving_the_handler_in_the_step_namespace_clears_the_reason(
    tasker: Tasker, clock: FakeClock
) -> None:
    order, _ = tasker.create_task(TaskRequest("order", namespace="shop"))
    register(tasker, "old", (NOOP,))
    # Given a worker that has the handler but claims only another namespace
    register(tasker, "ops-only", (CHARGE, NOOP), namespaces=("ops",))
    assert reasons(tasker, order)["charge"] == NO_WORKER_FOR_HANDLER

    # When a worker serving it for every namespace is live
    register(tasker, "new", (CHARGE, NOOP))
    assert reasons(tasker, order)["charge"] is None

    # When that worker stops: the step has no worker again
    clock.advance(1)
    tasker.stop_worker("new")
    assert reasons(tasker, order)["charge"] == NO_WORKER_FOR_HANDLER
    assert {w.id for w in tasker.live_workers()} == {"old", "ops-only"}


def test_live_workers_record_what_they_serve_and_their_lease(
    tasker: Tasker, clock: FakeClock
) -> None:
    served = tasker.registry.load_handlers()
    tasker.register_worker(
        "w",
        hostname="h",
        pid=7,
        namespaces=[],
        concurrency=3,
        lease_seconds=12.5,
        handlers=served,
    )
    (worker,) = tasker.live_workers()
    assert worker.handlers == frozenset({NOOP})
    assert worker.templates == ("ops/ping@0.1.0",)
    assert set(worker.handler_errors) == {CHARGE}
    assert "No module named 'shop_handlers'" in worker.handler_errors[CHARGE]
    assert worker.lease_seconds == 12.5
    clock.advance(12.5)
    assert [w.id for w in tasker.live_workers()] == ["w"]  # the boundary is still live
    clock.advance(0.01)
    assert tasker.live_workers() == []


def test_a_process_without_the_handlers_reads_a_template_a_worker_stored(
    tasker: Tasker, database: Database
) -> None:
    # Given a worker stored its templates (their handlers are not importable here)
    tasker.register_templates()
    # When a process with no templates of its own (an API server, `tasker task show`)
    # looks one up
    elsewhere = Tasker(database)
    order = elsewhere.template("order", "shop")
    # Then it gets the stored definition, without importing its handlers
    assert [step.handler for step in order.steps] == [CHARGE, NOOP]
