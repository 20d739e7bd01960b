"""On PostgreSQL the statements a worker repeats stay prepared on their connection: psycopg
prepares a query from its fifth run and forgets everything at a ROLLBACK, so reads end
with COMMIT (the same for a read-only transaction). Behind PgBouncer nothing is prepared,
and settings read from an environment that says so carry that to every connection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasker.config import Settings
from tasker.facade import Tasker
from tasker.store.postgres import PostgresConnection, PostgresDatabase

pytestmark = pytest.mark.postgres


def prepared_here(conn: PostgresConnection) -> list[str]:
    """The statements prepared on ``conn``'s server session (a session-local view)."""
    rows = conn._raw.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    return [row["statement"] for row in rows]


def test_statements_stay_prepared_across_reads(postgres_url: str) -> None:
    # Given one pooled connection, as a worker's claims, records and reads share them
    db = PostgresDatabase(postgres_url, max_size=1)
    try:
        # When a write's query runs often enough to be prepared, with a read after each
        for _ in range(6):
            with db.transaction() as conn:
                conn.fetch_one("get_system_health_counts", now=datetime.now(UTC))
            with db.read() as conn:
                conn.fetch_one(
                    "next_claimable_at", now=datetime.now(UTC), namespaces=None, handlers=None
                )
        # Then both are still prepared on the session: no read's end threw them away
        with db.read() as conn:
            statements = prepared_here(conn)
        assert any("get_system_health_counts" in s for s in statements), statements
        assert any("becomes claimable" in s for s in statements), statements
    finally:
        db.close()


def test_a_read_that_fails_still_rolls_back(postgres_url: str) -> None:
    # Given a read whose statement the server refuses
    db = PostgresDatabase(postgres_url, max_size=1)
    try:
        with pytest.raises(Exception, match="division by zero"), db.read() as conn:
            conn._raw.execute("SELECT 1 / 0")
        # Then the connection comes back usable, outside any transaction
        with db.read() as conn:
            assert conn.fetch_one("get_system_health_counts", now=datetime.now(UTC))
    finally:
        db.close()


def test_settings_that_say_pgbouncer_prepare_nothing(postgres_url: str) -> None:
    # Given settings read from an environment that puts PgBouncer in front of the URL
    # (the test process's own environment does not say so)
    env = {"TASKER_DATABASE_URL": postgres_url, "TASKER_PGBOUNCER": "on"}
    with Tasker.from_settings(Settings.from_env(env)) as tasker:
        db = tasker.database
        assert isinstance(db, PostgresDatabase)
        # When the same read runs far past psycopg's threshold for preparing it
        for _ in range(12):
            assert tasker.read(lambda c: c.fetch_one("get_task", task_id=1)) is None
        # Then the connection prepared nothing: on PgBouncer's shared server sessions a
        # prepared statement collides with another client's of the same name
        with db.read() as conn:
            assert conn._raw.prepare_threshold is None
            assert prepared_here(conn) == []
