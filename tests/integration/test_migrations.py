"""Migrations: a database upgraded from zero has exactly the canonical schema that
``sql/<dialect>/schema.sql`` shows, and that file builds the same schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from tasker.store import open_database
from tasker.store.migrations import migration_status, upgrade
from tasker.store.queries import load_migrations, load_queries, parse_queries
from tasker.store.schema import REGENERATE, render_schema, schema_path
from tasker.store.sqlite import path_from_url

DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DIALECTS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
    else:
        yield request.getfixturevalue("empty_postgres_url")


@pytest.fixture
def another_empty_url(empty_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend as ``empty_url``."""
    if empty_url.startswith("sqlite:"):
        yield f"sqlite:///{tmp_path}/another.db"
        return
    server, _, name = empty_url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}_b")
    yield f"{server}/{name}_b"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}_b WITH (FORCE)")


def test_dialects_have_aligned_migration_numbers() -> None:
    sqlite = [(v, n) for v, n, _ in load_migrations("sqlite")]
    postgres = [(v, n) for v, n, _ in load_migrations("postgres")]
    assert sqlite == postgres
    assert [v for v, _ in sqlite] == list(range(1, len(sqlite) + 1))


def test_upgrade_from_zero_applies_all_then_nothing(empty_url: str) -> None:
    db = open_database(empty_url)
    try:
        applied = upgrade(db)
        assert [s.version for s in applied] == [v for v, _, _ in load_migrations(db.dialect)]
        assert all(s.applied for s in migration_status(db))
        assert upgrade(db) == []
    finally:
        db.close()


def test_the_committed_schema_is_what_the_migrations_produce(empty_url: str) -> None:
    # Given a database migrated from zero
    db = open_database(empty_url)
    try:
        upgrade(db)
        # When its catalog is printed
        produced = render_schema(db)
        dialect = db.dialect
    finally:
        db.close()
    # Then it is the committed schema.sql, to the character
    committed = schema_path(dialect).read_text(encoding="utf-8")
    assert produced == committed, (
        f"src/tasker/store/sql/{dialect}/schema.sql is not what the migrations produce: "
        f"run `{REGENERATE}` and commit the result"
    )


def test_the_schema_file_builds_the_schema_the_migrations_build(
    empty_url: str, another_empty_url: str
) -> None:
    # Given one database built by the migrations and one by the committed schema.sql
    migrated = open_database(empty_url)
    try:
        upgrade(migrated)
        dialect = migrated.dialect
    finally:
        migrated.close()
    rebuilt = another_empty_url
    _apply(rebuilt, schema_path(dialect).read_text(encoding="utf-8"))
    # Then the driver's own view of the two catalogs (not the generator's) agrees:
    # every column with its type, default and nullability, constraint, index, function
    assert CATALOG[dialect](rebuilt) == CATALOG[dialect](empty_url)
    assert {"tasks", "steps", "step_edges", "events", "workers"} <= _tables(dialect, rebuilt)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_the_schema_file_defines_no_query(dialect: str) -> None:
    # The query loader reads every .sql file of the dialect, schema.sql included
    text = schema_path(dialect).read_text(encoding="utf-8")
    assert parse_queries(text) == {}
    assert "schema_objects" in load_queries(dialect)


def _apply(url: str, sql: str) -> None:
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(path_from_url(url))) as conn:
            conn.executescript(sql)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _tables(dialect: str, url: str) -> set[str]:
    return {str(key[1]) for key in CATALOG[dialect](url) if key[0] == "column"}


def _sqlite_catalog(url: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path_from_url(url))) as conn:
        objects = conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite%' "
            "ORDER BY 1, 2"
        ).fetchall()
        found: list[tuple[object, ...]] = [("object", *row) for row in objects]
        for _, name, _ in (row for row in objects if row[0] == "table"):
            found += [("column", name, *c) for c in conn.execute(f"PRAGMA table_xinfo({name})")]
            found += [
                ("fk", name, *f[2:]) for f in conn.execute(f"PRAGMA foreign_key_list({name})")
            ]
            for index in conn.execute(f"PRAGMA index_list({name})").fetchall():
                columns = conn.execute(f"PRAGMA index_xinfo({index[1]})").fetchall()
                found += [("index", name, *index[1:], tuple(columns))]
    return sorted(found, key=repr)


def _postgres_catalog(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        conn.execute("SET search_path = ''")
        columns = conn.execute(
            "SELECT 'column', table_name, ordinal_position, column_name, data_type, is_nullable,"
            " column_default, is_identity, is_generated FROM information_schema.columns"
            " WHERE table_schema = 'tasker' ORDER BY 2, 3"
        ).fetchall()
        constraints = conn.execute(
            "SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = 'tasker' ORDER BY 2, 3"
        ).fetchall()
        indexes = conn.execute(
            "SELECT 'index', indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'tasker' ORDER BY 2"
        ).fetchall()
        functions = conn.execute(
            "SELECT 'function', p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tasker'"
            " ORDER BY 2, 3"
        ).fetchall()
        others = conn.execute(
            "SELECT 'relation', relname, relkind::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tasker'"
            " UNION ALL SELECT 'trigger', tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'tasker' AND NOT t.tgisinternal ORDER BY 1, 2"
        ).fetchall()
    return [*columns, *constraints, *indexes, *functions, *others]


CATALOG = {"sqlite": _sqlite_catalog, "postgres": _postgres_catalog}
