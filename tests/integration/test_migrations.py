"""Migrations: a fresh database upgraded from zero has exactly the canonical schema."""

from __future__ import annotations

import psycopg
import pytest

from tasker.store import open_database
from tasker.store.migrations import migration_status, upgrade
from tasker.store.queries import load_migrations


def test_dialects_have_aligned_migration_numbers() -> None:
    sqlite = [(v, n) for v, n, _ in load_migrations("sqlite")]
    postgres = [(v, n) for v, n, _ in load_migrations("postgres")]
    assert sqlite == postgres
    assert [v for v, _ in sqlite] == list(range(1, len(sqlite) + 1))


def test_sqlite_upgrade_from_zero_applies_all_then_nothing(tmp_path: object) -> None:
    db = open_database(f"sqlite:///{tmp_path}/fresh.db")
    applied = upgrade(db)
    assert [s.version for s in applied] == [v for v, _, _ in load_migrations("sqlite")]
    assert all(s.applied for s in migration_status(db))
    assert upgrade(db) == []
    db.close()


@pytest.mark.postgres
def test_postgres_upgrade_from_zero_matches_template(
    empty_postgres_url: str, postgres_url: str
) -> None:
    db = open_database(empty_postgres_url)
    upgrade(db)
    assert upgrade(db) == []
    db.close()
    assert _pg_schema(empty_postgres_url) == _pg_schema(postgres_url)
    assert {"tasks", "steps", "step_edges", "events", "workers"} <= _pg_tables(postgres_url)


def _pg_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tasker'"
        ).fetchall()
    return {r[0] for r in rows}


def _pg_schema(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'tasker' ORDER BY 1, 2"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tasker' ORDER BY 1"
        ).fetchall()
        functions = conn.execute(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tasker' ORDER BY 1, 2"
        ).fetchall()
    return [*columns, *indexes, *functions]
