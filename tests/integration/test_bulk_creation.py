"""Bulk creation (``Tasker.create_tasks``) on both backends: each item on its own, with
idempotency within and across batches, nothing stored for a failed item, chunked writes,
and concurrent batches with the same keys that never duplicate a task."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tasker import BatchItemResult, FakeClock, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine import batch
from tasker.store import open_database
from tasker.store.database import Database


def noop(step: Any) -> dict[str, Any]:
    return {}


def order_template() -> Template:
    """validate -> charge, the context needs an integer order_id."""
    tpl = Template(
        "order",
        context_schema={
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "integer"}},
        },
    )
    tpl.add_step("validate", noop)
    tpl.add_step("charge", noop, depends_on=["validate"])
    return tpl


def per_customer() -> Template:
    tpl = Template("per_customer", concurrency={"key": "customer_id", "limit": 1})
    tpl.add_step("only", noop)
    return tpl


def make(database: Database) -> Tasker:
    registry = TemplateRegistry()
    registry.add(order_template())
    registry.add(per_customer())
    return Tasker(database, registry, clock=FakeClock())


@pytest.fixture
def tasker(database: Database) -> Tasker:
    return make(database)


def order(n: Any, key: str | None = None) -> TaskRequest:
    return TaskRequest("order", {"order_id": n}, idempotency_key=key)


def all_tasks(tasker: Tasker) -> list[dict[str, Any]]:
    return tasker.list_tasks(limit=10_000)


def test_invalid_items_get_their_own_error_and_the_others_are_created(tasker: Tasker) -> None:
    # Given a batch mixing good items with an unknown template, a context that fails the
    # schema and a context without the concurrency key field
    requests = [
        order(1),
        TaskRequest("no_such_template", {}),
        order("seven"),
        TaskRequest("per_customer", {"other": 1}),
        TaskRequest("per_customer", {"customer_id": 42}),
    ]

    # When they are created in one call
    results = tasker.create_tasks(requests)

    # Then every item has a result in order, the bad ones naming their index and problem
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.created for r in results] == [True, False, False, False, True]
    assert results[0].error is None and results[4].error is None
    assert results[1].task_id is None and results[1].error is not None
    assert results[1].error.startswith("item 1: ")
    assert "no template default/no_such_template" in results[1].error
    assert results[2].error is not None and results[2].error.startswith("item 2: ")
    assert "context_schema" in results[2].error and "is not of type 'integer'" in results[2].error
    assert results[3].error is not None and results[3].error.startswith("item 3: ")
    assert "'customer_id'" in results[3].error
    # And only the good items are stored, with their steps
    stored = all_tasks(tasker)
    assert sorted(t["id"] for t in stored) == sorted([results[0].task_id, results[4].task_id])
    assert tasker.get_task(results[0].task_id or 0)["context"] == {"order_id": 1}
    assert [s["name"] for s in tasker.get_task(results[0].task_id or 0)["steps"]] == [
        "validate",
        "charge",
    ]


def test_a_failed_item_leaves_no_event_or_history(tasker: Tasker) -> None:
    # Given a batch where only item 1 is good
    results = tasker.create_tasks([order("x"), order(2), TaskRequest("nope", {})])

    # Then the event log holds the events of item 1's task only
    good = results[1].task_id
    assert good is not None
    assert {e["task_id"] for e in tasker.events()} == {good}


def test_a_batch_task_has_the_same_history_and_events_as_one_created_alone(
    tasker: Tasker,
) -> None:
    # Given one task created alone and one created in a batch, from the same request
    alone, _ = tasker.create_task(order(5))
    [item] = tasker.create_tasks([order(5)])
    assert item.created and item.task_id is not None

    # Then both have the same events, history and steps
    def events(task_id: int) -> list[tuple[str, Any]]:
        return [
            (e["name"], e["step_name"], {k: v for k, v in e["payload"].items() if k != "steps"})
            for e in tasker.events(task_id=task_id)
        ]

    def history(task_id: int) -> list[tuple[Any, ...]]:
        return [
            (t["step_name"], t["from_state"], t["to_state"]) for t in tasker.transitions(task_id)
        ]

    assert events(item.task_id) == events(alone)
    assert history(item.task_id) == history(alone)
    batch_task, single_task = tasker.get_task(item.task_id), tasker.get_task(alone)
    assert [(s["name"], s["status"], s["depends_on"]) for s in batch_task["steps"]] == [
        (s["name"], s["status"], s["depends_on"]) for s in single_task["steps"]
    ]


def test_idempotency_keys_across_batches_return_the_existing_task(tasker: Tasker) -> None:
    # Given a task made with key k1 by create_task and a batch that made k2
    first, _ = tasker.create_task(order(1, "k1"))
    [made] = tasker.create_tasks([order(2, "k2")])

    # When a later batch repeats both keys, one with a different request
    results = tasker.create_tasks([order(1, "k1"), order(3, "k2"), order(4, "k3")])

    # Then the same request returns the existing task, the different one is a conflict
    assert results[0] == BatchItemResult(0, first, False, None)
    assert results[1].task_id is None and not results[1].created
    assert results[1].error is not None and results[1].error.startswith("item 1: ")
    assert "'k2'" in results[1].error and "different request" in results[1].error
    assert results[2].created
    assert len(all_tasks(tasker)) == 3
    assert tasker.get_task(made.task_id or 0)["context"] == {"order_id": 2}


def test_two_items_with_one_key_in_a_batch_are_one_task(tasker: Tasker) -> None:
    # Given a batch repeating key a (same request) and key b (different request)
    results = tasker.create_tasks([order(1, "a"), order(2, "b"), order(1, "a"), order(9, "b")])

    # Then the repeat of a returns the first's task, the different b is an error
    assert results[0].created and results[1].created
    assert results[2] == BatchItemResult(2, results[0].task_id, False, None)
    assert results[3].error is not None and results[3].error.startswith("item 3: ")
    assert "used by an earlier item of this batch with a different request" in results[3].error
    assert len(all_tasks(tasker)) == 2


def test_a_repeat_of_a_failed_item_fails_the_same_way(tasker: Tasker) -> None:
    # Given a key already used by another request, and a batch using it twice
    tasker.create_task(order(1, "k"))
    results = tasker.create_tasks([order(2, "k"), order(2, "k")])

    # Then both items fail with the conflict, each naming its own index
    assert [r.task_id for r in results] == [None, None]
    assert results[0].error is not None and results[0].error.startswith("item 0: ")
    assert results[1].error is not None and results[1].error.startswith("item 1: ")
    assert results[0].error.partition(": ")[2] == results[1].error.partition(": ")[2]
    assert len(all_tasks(tasker)) == 1


def test_items_are_written_in_chunks_and_idempotency_spans_chunk_boundaries(
    tasker: Tasker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks of 3 items and a batch of 8 where item 4 (second chunk) repeats item 1's
    # key, item 6 is invalid
    monkeypatch.setattr(batch, "CHUNK_SIZE", 3)
    writes: list[int] = []
    real_write = tasker.write

    def counting_write(work: Any, **kwargs: Any) -> Any:
        writes.append(1)
        return real_write(work, **kwargs)

    monkeypatch.setattr(tasker, "write", counting_write)
    requests = [order(n, f"key-{n}") for n in range(8)]
    requests[4] = order(1, "key-1")
    requests[6] = order("bad", "key-6")

    # When they are created
    results = tasker.create_tasks(requests)

    # Then 6 tasks are written in 2 chunk transactions (plus 1 storing the template)
    assert [r.created for r in results] == [True, True, True, True, False, True, False, True]
    assert results[4].task_id == results[1].task_id
    assert results[6].error is not None and results[6].error.startswith("item 6: ")
    assert len(writes) == 1 + 2
    assert len(all_tasks(tasker)) == 6
    # And a second identical batch creates nothing and stores no template again
    writes.clear()
    again = tasker.create_tasks(requests)
    assert [r.task_id for r in again] == [r.task_id for r in results]
    assert not any(r.created for r in again)
    assert len(writes) == 2


def test_more_items_than_a_chunk_are_all_created(tasker: Tasker) -> None:
    # Given one more item than a chunk holds
    count = batch.CHUNK_SIZE + 1

    # When they are created
    results = tasker.create_tasks([order(n, f"k{n}") for n in range(count)])

    # Then each is a task of its own with its own context
    assert all(r.created and r.error is None for r in results)
    ids = [r.task_id for r in results]
    assert len(set(ids)) == count
    assert tasker.get_task(ids[-1] or 0)["context"] == {"order_id": count - 1}
    assert len(all_tasks(tasker)) == count


def test_tasks_created_counts_the_created_tasks_only(tasker: Tasker) -> None:
    tasker.create_task(order(1, "k"))
    before = tasker.metrics.tasks_created._value.get()

    tasker.create_tasks([order(1, "k"), order(2), order("bad"), order(3)])

    assert tasker.metrics.tasks_created._value.get() - before == 2


def test_concurrent_batches_with_the_same_keys_make_each_task_once(db_url: str) -> None:
    # Given two Taskers on one database, each with its own connections
    databases = [open_database(db_url), open_database(db_url)]
    taskers = [make(d) for d in databases]
    requests = [order(n, f"shared-{n}") for n in range(300)]
    barrier = threading.Barrier(2)
    outcomes: list[list[BatchItemResult]] = [[], []]
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = taskers[i].create_tasks(requests)
        except BaseException as exc:
            errors.append(exc)

    # When both create the same keyed batch at the same moment
    try:
        threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        # Then every key made exactly one task, and both callers got its id
        assert errors == []
        assert [r.task_id for r in outcomes[0]] == [r.task_id for r in outcomes[1]]
        assert all(r.error is None for r in outcomes[0] + outcomes[1])
        created = [a.created for a in outcomes[0]], [b.created for b in outcomes[1]]
        assert all(a != b for a, b in zip(*created, strict=True))  # one of the two made it
        assert len(all_tasks(taskers[0])) == len(requests)
    finally:
        for database in databases:
            database.close()
