"""A transaction's history rows, events and wake-up go to the database in one pipeline
(``HistoryWriter.flush``). A pipelined statement that fails still undoes the whole
transaction, with an error that names the problem, and the wake-up still wakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasker import Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.history import Change, Event, HistoryWriter
from tasker.exceptions import DuplicateKey
from tasker.store.database import Database
from tasker.store.postgres import PostgresDatabase


def one_step_task(database: Database) -> int:
    registry = TemplateRegistry()
    template = Template("piped")
    template.add_step("only", lambda ctx: {"ok": True})
    registry.add(template)
    task_id, _ = Tasker(database, registry).create_task(TaskRequest("piped"))
    return task_id


def counts(database: Database, task_id: int) -> tuple[int, int]:
    with database.read() as conn:
        events = conn.fetch_all("events_page", after_id=0, task_id=task_id, limit=1000)
        transitions = conn.fetch_all("task_transitions", task_id=task_id)
    return len(events), len(transitions)


def test_a_failing_pipelined_statement_undoes_the_whole_transaction(database: Database) -> None:
    # Given a task whose first history row has sort key 1
    task_id = one_step_task(database)
    before = counts(database, task_id)
    now = datetime.now(UTC)
    # When a flush sends an event and a wake-up with a history row that collides with it
    history = HistoryWriter()
    history.event(Event("custom.piped", task_id, {"n": 1}))
    history.change(Change(task_id, "pending", "in_progress", 1, "task.started"))
    history.notify_steps_ready()
    with pytest.raises(DuplicateKey, match="sort_key"), database.transaction() as conn:
        history.flush(conn, now)
    # Then nothing of it was stored, and the database serves the next transaction
    assert counts(database, task_id) == before
    history = HistoryWriter()
    history.event(Event("custom.piped", task_id, {"n": 2}))
    with database.transaction() as conn:
        history.flush(conn, now)
    assert counts(database, task_id) == (before[0] + 1, before[1])


@pytest.mark.postgres
def test_a_pipelined_wake_up_reaches_a_listener(postgres_url: str) -> None:
    db = PostgresDatabase(postgres_url)
    try:
        task_id = one_step_task(db)
        assert not db.listen("tasker_steps", 0.05)  # listening from here on
        # When a flush sends history and the wake-up together
        history = HistoryWriter()
        history.event(Event("custom.piped", task_id, {}))
        history.notify_steps_ready()
        with db.transaction() as conn:
            history.flush(conn, datetime.now(UTC))
        # Then the listener wakes once the transaction commits
        assert db.listen("tasker_steps", 5.0)
    finally:
        db.close()


@pytest.mark.postgres
def test_pipelined_statements_stay_prepared(postgres_url: str) -> None:
    db = PostgresDatabase(postgres_url, max_size=1)
    try:
        task_id = one_step_task(db)
        for n in range(6):  # psycopg prepares a statement from its fifth run
            history = HistoryWriter()
            history.event(Event("custom.piped", task_id, {"n": n}))
            history.notify_steps_ready()
            with db.transaction() as conn:
                history.flush(conn, datetime.now(UTC))
        with db.read() as conn:
            rows = conn._raw.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        statements = [row["statement"] for row in rows]
        assert any("INSERT INTO tasker.events" in s for s in statements), statements
    finally:
        db.close()
