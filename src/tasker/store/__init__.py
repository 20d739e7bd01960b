"""The store: one ``Database`` protocol with a SQLite and a PostgreSQL backend, every query
a named block in ``sql/<dialect>/*.sql``, migrations, and the readiness queries."""

from __future__ import annotations

from typing import Any

from tasker.exceptions import ConfigurationError
from tasker.store.database import Connection, Database
from tasker.store.postgres import PostgresDatabase
from tasker.store.sqlite import SQLiteDatabase

__all__ = ["Connection", "Database", "open_database"]


def open_database(url: str, **options: Any) -> Database:
    """Open the database ``url`` names: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:"):
        return SQLiteDatabase(url, **options)
    if url.startswith(("postgresql:", "postgres:")):
        return PostgresDatabase(url, **options)
    raise ConfigurationError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db "
        "or postgresql://user@host:5432/dbname"
    )
