"""Chunk-wide writes of ``Tasker.create_tasks`` on both backends: a task written with its
chunk has the very rows, history and events of one created alone from the same request;
mixed batches (bad items, repeated keys, stored keys, items only single creation writes)
keep every item's outcome and the items' order; a chunk the database refuses, or one
that loses an idempotency-key race, is redone item by item."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tasker import FakeClock, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine import batch
from tasker.exceptions import StoreError
from tasker.store.database import Connection, Database, Row
from tasker.store.sqlite import path_from_url

SHIP = {"namespace": "shipping", "name": "ship_parcel"}


def noop(step: Any) -> dict[str, Any]:
    return {}


def templates() -> list[Template]:
    order = Template(
        "order",
        context_schema={
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "integer"}},
        },
        priority=2,
    )
    order.add_step("validate", noop, config={"strict": True, "limit": 1.5})
    order.add_step("reserve", noop, depends_on=["validate"], max_attempts=5)
    order.add_step("charge", noop, depends_on=["validate"], concurrency={"limit": 2})
    order.add_step("notify", noop, depends_on=["reserve", "charge"], rate_limit="10/second")

    per_customer = Template("per_customer", concurrency={"key": "customer_id", "limit": 1})
    per_customer.add_step("only", noop)

    ship_parcel = Template("ship_parcel", namespace="shipping", version="1.0.0")
    ship_parcel.add_step("label", noop)

    # A child workflow below a root: written chunk-wide, with its reference pinned.
    ships_later = Template("ships_later")
    ships_later.add_step("pack", noop)
    ships_later.add_step("ship", None, depends_on=["pack"], workflow=SHIP)

    # Roots only single creation starts: a wait for a signal, a child workflow.
    signalled = Template("signalled")
    signalled.add_step("opened", None, wait_for="open")
    signalled.add_step("after", noop, depends_on=["opened"])
    ships_now = Template("ships_now")
    ships_now.add_step("ship", None, workflow=SHIP)
    return [order, per_customer, ship_parcel, ships_later, signalled, ships_now]


def make(database: Database) -> Tasker:
    registry = TemplateRegistry()
    for template in templates():
        registry.add(template)
    return Tasker(database, registry, clock=FakeClock())


@pytest.fixture
def tasker(database: Database) -> Tasker:
    return make(database)


def order(n: Any, key: str | None = None, **options: Any) -> TaskRequest:
    return TaskRequest("order", {"order_id": n}, idempotency_key=key, **options)


# -- the rows as stored, read with the driver itself ---------------------------------------


def raw(db_url: str, sql: str, *params: Any) -> list[Row]:
    """Rows as the driver returns them (SQLite: the stored JSON text, byte for byte)."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(path_from_url(db_url))
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql.replace("tasker.", ""), params)]
        finally:
            conn.close()
    with psycopg.connect(db_url, row_factory=dict_row) as pg:
        return pg.execute(sql.replace("?", "%s"), params).fetchall()


IDS = {"id", "task_id", "step_id", "from_step_id", "to_step_id", "child_task_id"}
# With an OpenTelemetry SDK installed every task starts a trace of its own: the trace and
# span ids in its traceparent differ by nature, the rest of it must not.
TRACE_IDS = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-")


def without_trace_ids(value: Any) -> Any:
    return None if value is None else TRACE_IDS.sub("00-<trace>-<span>-", str(value))


def stored(db_url: str, task_id: int) -> dict[str, Any]:
    """Everything stored for a task, ids replaced by step names (they differ by nature)."""
    steps = raw(db_url, "SELECT * FROM tasker.steps WHERE task_id = ? ORDER BY id", task_id)
    names = {s["id"]: s["name"] for s in steps}

    def named(rows: list[Row]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in IDS}
            | ({"step": names[r["step_id"]]} if r.get("step_id") else {})
            for r in rows
        ]

    def of_task(table: str) -> list[Row]:
        return raw(db_url, f"SELECT * FROM tasker.{table} WHERE task_id = ? ORDER BY id", task_id)

    [task] = raw(db_url, "SELECT * FROM tasker.tasks WHERE id = ?", task_id)
    task["trace_context"] = without_trace_ids(task["trace_context"])
    edges = raw(db_url, "SELECT * FROM tasker.step_edges WHERE task_id = ?", task_id)
    return {
        "task": named([task]),
        "steps": named(steps),
        "edges": sorted((names[e["from_step_id"]], names[e["to_step_id"]]) for e in edges),
        "task_transitions": named(of_task("task_transitions")),
        "step_transitions": named(of_task("step_transitions")),
        "events": named(of_task("events")),
    }


REQUESTS = {
    "dag with a schema and step limits": order(5),
    "every request option": order(
        6,
        initiator="alice",
        source_system="shop",
        reason="a test",
        tags=("a", "é"),
        priority=-3,
        delay_seconds=90.5,
    ),
    "a time to run at": order(7, run_at=FakeClock().now()),
    "a concurrency key": TaskRequest("per_customer", {"customer_id": 42, "x": [1, 2.5, None]}),
    "a child workflow below a root": TaskRequest("ships_later", {"parcel": 1}),
}


@pytest.mark.parametrize("request_", list(REQUESTS.values()), ids=list(REQUESTS))
def test_a_task_written_with_its_chunk_stores_what_one_created_alone_stores(
    tasker: Tasker, db_url: str, request_: TaskRequest
) -> None:
    # Given one task created alone, and the same request in a batch among others
    alone, _ = tasker.create_task(request_, actor="bob")
    results = tasker.create_tasks([order(1), request_, order(2)], actor="bob")
    assert all(r.created for r in results)
    in_batch = results[1].task_id
    assert in_batch is not None

    # Then every column of every row stored for it is the same, ids aside
    expected, found = stored(db_url, alone), stored(db_url, in_batch)
    assert found == expected
    assert found["events"] and found["step_transitions"]  # the comparison compared something


def test_a_mixed_batch_keeps_each_items_outcome_and_the_items_order(
    tasker: Tasker, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given keys stored already, chunks of 4, and a batch mixing good and bad items,
    # repeated keys, stored keys and items whose roots only single creation starts
    monkeypatch.setattr(batch, "CHUNK_SIZE", 4)
    same, _ = tasker.create_task(order(1, "stored-same"))
    tasker.create_task(order(2, "stored-other"))
    requests = [
        order(10),  # 0
        order("bad"),  # 1: fails the schema
        order(11, "k"),  # 2
        order(11, "k"),  # 3: the same request as 2
        order(12, "k"),  # 4: k with another request
        order(1, "stored-same"),  # 5: the stored task
        order(3, "stored-other"),  # 6: a stored key with another request
        TaskRequest("signalled", {}),  # 7: its root waits for a signal
        order(13),  # 8
        TaskRequest("ships_now", {"parcel": 2}),  # 9: its root starts a child task
        TaskRequest("per_customer", {"customer_id": 1}, idempotency_key="p"),  # 10
    ]

    # When they are created
    results = tasker.create_tasks(requests)

    # Then each item has its own outcome
    assert [r.created for r in results] == [
        True, False, True, False, False, False, False, True, True, True, True,
    ]  # fmt: skip
    assert results[1].error is not None and "context_schema" in results[1].error
    assert results[3].task_id == results[2].task_id
    assert results[4].error is not None and results[4].error.startswith("item 4: ")
    assert results[5].task_id == same and results[5].error is None
    assert results[6].error is not None and results[6].error.startswith("item 6: ")
    assert "'stored-other'" in results[6].error
    # And the tasks' ids follow the items' order
    created = [r.task_id for r in results if r.created]
    assert created == sorted(created) and len(set(created)) == len(created)
    # And every task has what a single creation of its request stores
    for index in (0, 2, 7, 8, 9, 10):
        task_id = results[index].task_id
        assert task_id is not None
        request = requests[index]
        alone, _ = tasker.create_task(
            TaskRequest(request.name, request.context, idempotency_key=None)
        )
        batch_task, single_task = stored(db_url, task_id), stored(db_url, alone)
        for task in (batch_task, single_task):  # each started a child of its own
            task["events"] = [
                e | {"payload": "child id"} if e["name"] == "workflow.child_task_created" else e
                for e in task["events"]
            ]
        for part in ("steps", "edges", "task_transitions", "step_transitions", "events"):
            assert batch_task[part] == single_task[part], (index, part)
    # And the root that starts a child did start it
    ship = tasker.get_task(results[9].task_id or 0)["steps"][0]
    assert ship["status"] == "in_progress" and ship["child_task_id"] is not None
    # And nothing else was stored: 2 before, 6 made by the batch, 6 alone, 2 children
    assert len(tasker.list_tasks(limit=100)) == 2 + 6 + 6 + 2


class Interfering:
    """A connection that misbehaves on one query and otherwise passes everything on."""

    def __init__(self, conn: Connection, query: str, reply: Callable[[], list[Row]]) -> None:
        self._conn = conn
        self._query = query
        self._reply = reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        if query == self._query:
            return self._reply()
        return self._conn.fetch_all(query, **params)


def interfere(
    tasker: Tasker, monkeypatch: pytest.MonkeyPatch, query: str, reply: Callable[[], list[Row]]
) -> None:
    real_write = tasker.write

    def write(work: Callable[[Any], Any], **kwargs: Any) -> Any:
        return real_write(lambda conn: work(Interfering(conn, query, reply)), **kwargs)

    monkeypatch.setattr(tasker, "write", write)


def test_a_key_committed_after_the_look_up_answers_with_the_task_that_won(
    tasker: Tasker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored key that the chunk's look-up misses, as when a concurrent creator
    # commits it in between
    winner, _ = tasker.create_task(order(1, "raced"))
    interfere(tasker, monkeypatch, "tasks_by_idempotency_keys", list)

    # When a batch repeats it between two new items
    results = tasker.create_tasks([order(2), order(1, "raced"), order(3)])

    # Then the chunk is redone item by item: the repeat answers with the stored task, the
    # others are created once, each with its own events only
    assert [(r.created, r.error) for r in results] == [(True, None), (False, None), (True, None)]
    assert results[1].task_id == winner
    assert len(tasker.list_tasks(limit=100)) == 3
    for result in (results[0], results[2]):
        names = [e["name"] for e in tasker.events(task_id=result.task_id)]
        assert names == ["workflow.task_created", "workflow.steps_ready"]


def test_a_chunk_the_database_refuses_is_written_item_by_item(
    tasker: Tasker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a database that refuses the chunk-wide insert of tasks
    def refuse() -> list[Row]:
        raise StoreError("insert_tasks: value refused")

    interfere(tasker, monkeypatch, "insert_tasks", refuse)

    # When a batch is created
    results = tasker.create_tasks([order(n, f"k{n}") for n in range(5)])

    # Then every item is still created, once, in order
    assert all(r.created and r.error is None for r in results)
    ids = [r.task_id for r in results]
    assert ids == sorted(ids) and len(tasker.list_tasks(limit=100)) == 5
    assert tasker.get_task(ids[4] or 0)["context"] == {"order_id": 4}
