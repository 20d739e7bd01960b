"""pytest fixtures for testing Tasker workflows.

Enable with ``pytest_plugins = ["tasker.testing.pytest_plugin"]`` in a conftest.py:

- ``tasker_app``: a :class:`~tasker.Tasker` on a fresh, migrated SQLite file with a
  :class:`~tasker.FakeClock` (``tasker_app.clock``) and an empty registry
  (``tasker_app.registry.add(template)``); closed after the test.
- ``tasker_backend``: a fresh, migrated database URL, once per backend ("sqlite",
  "postgres"): ``run_task(template, database_url=tasker_backend)``. PostgreSQL comes from
  ``TASKER_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
  a role allowed to create databases); each test gets its own database, dropped after.
  Without a server the PostgreSQL case is skipped, unless ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker.clock import FakeClock
from tasker.facade import Tasker
from tasker.store import open_database
from tasker.store.migrations import upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server")


def postgres_admin_url() -> str:
    return os.environ.get("TASKER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _migrated_sqlite_url(directory: Path) -> str:
    url = f"sqlite:///{directory / 'tasker.db'}"
    database = open_database(url)
    try:
        upgrade(database)
    finally:
        database.close()
    return url


@pytest.fixture
def tasker_app(tmp_path: Path) -> Iterator[Tasker]:
    """A Tasker on a fresh migrated SQLite file, with a FakeClock; closed after the test."""
    with Tasker.open(f"sqlite:///{tmp_path / 'tasker.db'}", migrate=True, clock=FakeClock()) as app:
        yield app


class _PostgresServer:
    """Creates and drops databases on the server of the admin URL."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url

    def execute(self, sql: str) -> None:
        import psycopg  # only needed when a PostgreSQL test runs

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.encode())

    def url_of(self, database: str) -> str:
        base, _, _ = self.admin_url.partition("?")[0].rpartition("/")
        return f"{base}/{database}"


@pytest.fixture(scope="session")
def _tasker_postgres_template() -> Iterator[tuple[_PostgresServer, str]]:
    """A migrated database to clone, made once per session (skip or fail without a server)."""
    import psycopg

    server = _PostgresServer(postgres_admin_url())
    try:
        server.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {server.admin_url}: {exc}"
        if in_ci():
            pytest.fail(message + " (CI=true: the PostgreSQL tests are required)")
        pytest.skip(message + " -- SKIPPING the PostgreSQL case")
    name = f"tasker_plugin_tpl_{os.getpid()}"
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {name}")
    database = open_database(server.url_of(name))
    try:
        upgrade(database)
    finally:
        database.close()
    yield server, name
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tasker_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database URL for this test, once per backend."""
    if request.param == "sqlite":
        yield _migrated_sqlite_url(tmp_path)
        return
    server, template = request.getfixturevalue("_tasker_postgres_template")
    name = f"tasker_plugin_{uuid.uuid4().hex[:12]}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield server.url_of(name)
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
