"""Queries with optional filters take the index of the filters a call gives, on both
backends (tasker.store.queries, ``-- when name`` lines). Read from the planners' own
EXPLAIN output; nothing here is timed."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tasker.store.postgres import PostgresConnection
from tasker.store.queries import load_queries, specialise

EVENTS = {"after_id": 0, "task_id": 7, "name": None, "limit": 100}
TASKS = {"status": "pending", "namespace": None, "name": None, "before_id": None, "limit": 50}


def _sqlite_plan(url: str, query: str, params: dict[str, Any]) -> str:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        sql = specialise(load_queries("sqlite")[query], params)
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        return " | ".join(str(row[-1]) for row in rows)
    finally:
        conn.close()


def test_sqlite_reads_one_tasks_events_and_a_status_through_their_indexes(
    sqlite_url: str,
) -> None:
    # Given the events of one task, and the tasks of one status, asked on SQLite
    # Then each is a search of the index that holds them, not a scan of the table
    assert "events_task_idx" in _sqlite_plan(sqlite_url, "events_page", EVENTS)
    assert "events_task_idx" in _sqlite_plan(sqlite_url, "events_after", EVENTS)
    assert "tasks_status_id_idx" in _sqlite_plan(sqlite_url, "list_tasks", TASKS)
    # And without the filters, the id order (the primary key) serves the page
    unfiltered = _sqlite_plan(sqlite_url, "events_page", {**EVENTS, "task_id": None})
    assert "events_task_idx" not in unfiltered


@pytest.mark.postgres
def test_postgres_plans_one_tasks_events_by_its_index_even_when_generic(
    postgres_url: str,
) -> None:
    # Given a session that always uses a prepared statement's generic plan
    with psycopg.connect(postgres_url, row_factory=dict_row, autocommit=True) as raw:
        raw.execute("SET plan_cache_mode = force_generic_plan")
        sql = specialise(load_queries("postgres")["events_page"], EVENTS)
        raw.execute(
            "PREPARE page(bigint, bigint, int) AS "
            + sql.replace("%(after_id)s", "$1")
            .replace("%(task_id)s", "$2")
            .replace("%(limit)s", "$3")
        )
        plan = "\n".join(
            row["QUERY PLAN"] for row in raw.execute("EXPLAIN EXECUTE page(0, 7, 100)")
        )
    # Then the plan made without the task's id still searches the task's index
    assert "events_task_idx" in plan, plan


@pytest.mark.postgres
def test_postgres_prepares_hot_queries_but_plans_the_task_list_at_every_call(
    postgres_url: str,
) -> None:
    # Given one connection running the events page and the task list a dozen times each
    with psycopg.connect(postgres_url, row_factory=dict_row, autocommit=True) as raw:
        conn = PostgresConnection(raw, load_queries("postgres"))
        for _ in range(12):
            conn.fetch_all("events_page", **EVENTS)
            conn.fetch_all("list_tasks", **TASKS)
        prepared = [
            row["statement"] for row in raw.execute("SELECT statement FROM pg_prepared_statements")
        ]
    # Then the events page became a prepared statement (the driver's default), the task
    # list did not: a generic plan cannot know whether its status is rare or common
    assert any("FROM tasker.events" in s for s in prepared), prepared
    assert not any("FROM tasker.tasks" in s for s in prepared), prepared
