"""The store: one ``Database`` protocol with a SQLite and a PostgreSQL backend, every query
a named block in ``sql/<dialect>/*.sql``, migrations, and the readiness queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasker.exceptions import ConfigurationError
from tasker.store.database import Connection, Database

if TYPE_CHECKING:
    from tasker.config import PoolerSettings

__all__ = ["Connection", "Database", "open_database"]


def open_database(url: str, *, pooler: PoolerSettings | None = None, **options: Any) -> Database:
    """Open the database ``url`` names: ``sqlite:///path`` or ``postgresql://...``.
    ``pooler`` concerns PostgreSQL only (none: from the process's environment).

    Each backend is imported only when opened: psycopg alone costs a SQLite user's every
    command about 100 ms of start-up."""
    if url.startswith("sqlite:"):
        from tasker.store.sqlite import SQLiteDatabase

        return SQLiteDatabase(url, **options)
    if url.startswith(("postgresql:", "postgres:")):
        from tasker.store.postgres import PostgresDatabase

        return PostgresDatabase(url, pooler=pooler, **options)
    raise ConfigurationError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/file.db "
        "or postgresql://user@host:5432/dbname"
    )
