"""Shared fixtures: every test gets its own SQLite file or its own PostgreSQL database.

PostgreSQL databases are cloned from a template migrated once per session, which
costs a few tens of milliseconds per test. Without a server the PostgreSQL tests are
skipped, loudly; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tasker.store import open_database
from tasker.store.database import Database
from tasker.store.migrations import upgrade

ADMIN_URL = os.environ.get(
    "TASKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """Name of a migrated template database, made once per test session."""
    try:
        _admin("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests are required)")
        pytest.skip(message + " -- SKIPPING the PostgreSQL tests")
    name = f"tasker_tpl_{os.getpid()}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {name}")
    db = open_database(_server_url(name))
    try:
        upgrade(db)
    finally:
        db.close()
    yield name
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test alone."""
    name = f"tasker_t_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    yield _server_url(name)
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database with no schema at all."""
    try:
        _admin("SELECT 1")
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc} -- SKIPPING")
    name = f"tasker_e_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    yield _server_url(name)
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """URL of a fresh, migrated SQLite file for this test alone."""
    url = f"sqlite:///{tmp_path}/tasker.db"
    db = open_database(url)
    try:
        upgrade(db)
    finally:
        db.close()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database URL, once per backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """An open Database on a fresh migrated schema, once per backend."""
    db = open_database(db_url)
    yield db
    db.close()
