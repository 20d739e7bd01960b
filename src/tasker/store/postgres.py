"""PostgreSQL backend: psycopg 3 with a connection pool; every object in schema ``tasker``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker.config import PoolerSettings
from tasker.exceptions import (
    DatabaseUnavailable,
    DuplicateKey,
    SchemaNotReady,
    StoreError,
    TransientStoreError,
)
from tasker.store.database import Json, Row, unencodable_text
from tasker.store.queries import load_queries, planned_each_call, specialise


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _to_sql(value: Any) -> Any:
    if isinstance(value, Json | dict):
        return Jsonb(value.value if isinstance(value, Json) else value, dumps=_dumps)
    return value


def _from_sql(row: dict[str, Any]) -> Row:
    for name, value in row.items():
        if isinstance(value, datetime):
            row[name] = value.astimezone(UTC)
    return row


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn driver errors into Tasker's own."""
    try:
        yield
    except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
        raise TransientStoreError(f"{what}: {exc}") from exc
    except pg_errors.UniqueViolation as exc:
        raise DuplicateKey(str(exc)) from exc
    except (
        pg_errors.UndefinedTable,
        pg_errors.InvalidSchemaName,
        pg_errors.UndefinedFunction,
    ) as exc:
        raise SchemaNotReady(
            f"the database has no (or an old) Tasker schema: run `tasker db upgrade` ({exc})"
        ) from exc
    except psycopg_pool.PoolTimeout as exc:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"{what}: {exc}") from exc


# Pipeline mode needs libpq 14 or later (the binary wheels bundle a recent one).
PIPELINE_SUPPORTED = psycopg.Pipeline.is_supported()


class PostgresConnection:
    def __init__(self, raw: psycopg.Connection[dict[str, Any]], queries: dict[str, str]):
        self._raw = raw
        self._queries = queries

    def _run(self, query: str, params: dict[str, Any]) -> psycopg.Cursor[dict[str, Any]]:
        with translate_errors(query):
            try:
                sql = self._queries[query]
                return self._raw.execute(
                    specialise(sql, params),
                    {k: _to_sql(v) for k, v in params.items()},
                    prepare=False if planned_each_call(sql) else None,
                )
            except UnicodeEncodeError:  # raised before sending: the transaction is intact
                raise unencodable_text(query, params) from None

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        cursor = self._run(query, params)
        return [_from_sql(row) for row in cursor.fetchall()]

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        rows = self.fetch_all(query, **params)
        return rows[0] if rows else None

    def execute(self, query: str, /, **params: Any) -> int:
        return self._run(query, params).rowcount

    def execute_script(self, sql: str) -> None:
        with translate_errors("migration"):
            self._raw.execute(sql)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # A nested psycopg transaction is a SAVEPOINT, rolled back to on any exception.
        with translate_errors("savepoint"), self._raw.transaction():
            yield

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        # Errors of pipelined statements are raised when the pipeline syncs, on leaving it.
        with (
            translate_errors("pipeline"),
            self._raw.pipeline() if PIPELINE_SUPPORTED else nullcontext(),
        ):
            yield


class PostgresDatabase:
    """A pool of connections to ``url``.

    Behind PgBouncer in transaction pooling (``pooler.pgbouncer``, ``TASKER_PGBOUNCER=on``)
    a client's statements may run on a different server session each transaction, so
    nothing may outlive a transaction there: prepared statements are off
    (``prepare_threshold=None``), and the one LISTEN connection goes to
    ``pooler.listen_url``, directly to PostgreSQL, or does not exist (workers poll).
    Everything else Tasker does is transaction-scoped already (advisory locks are
    ``pg_advisory_xact_lock``, settings are ``SET TRANSACTION``)."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout_seconds: float = 5.0,
        pooler: PoolerSettings | None = None,
    ):
        self.url = url
        self.pooler = PoolerSettings.from_env() if pooler is None else pooler
        self._listen_url = self.pooler.listen_url or (None if self.pooler.pgbouncer else url)
        # whether listen() can wake a worker before its poll interval
        self.supports_notify = self._listen_url is not None
        self._queries = load_queries("postgres")
        connection_options: dict[str, Any] = {
            "row_factory": dict_row,
            "connect_timeout": max(int(connect_timeout_seconds), 1),
        }
        if self.pooler.pgbouncer:
            connection_options["prepare_threshold"] = None
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=connection_options,
            timeout=connect_timeout_seconds,
            check=self._check_connection,
            open=False,
        )
        # One direct attempt first: a refused or misnamed server fails at once with the
        # driver's own reason, instead of the pool retrying until its timeout.
        with translate_errors("connect"):
            psycopg.connect(url, connect_timeout=max(int(connect_timeout_seconds), 1)).close()
            self._pool.open(wait=True, timeout=connect_timeout_seconds)
        self._listener: psycopg.Connection[Any] | None = None
        self._listener_lock = threading.Lock()

    def _check_connection(self, raw: psycopg.Connection[dict[str, Any]]) -> None:
        """Try a connection (an empty query, one round trip) before the pool lends it.

        After PostgreSQL restarts every idle connection is dead: lent, each failed a
        request (503) until the pool noticed. A dead one is discarded, and since the
        others are then dead too, they are all replaced at once (``check``), rather than
        one per request with the pool's growing back-off between them.
        """
        try:
            psycopg_pool.ConnectionPool.check_connection(raw)
        except psycopg.Error:
            self._pool.check()
            raise

    @contextmanager
    def transaction(self) -> Iterator[PostgresConnection]:
        with (
            translate_errors("transaction"),
            self._pool.connection() as raw,
            raw.transaction(),
        ):
            yield PostgresConnection(raw, self._queries)

    @contextmanager
    def read(self) -> Iterator[PostgresConnection]:
        # REPEATABLE READ gives multi-query reads (a task and its steps) one snapshot.
        with translate_errors("read"), self._pool.connection() as raw:
            # psycopg opens the transaction implicitly; this must be its first statement.
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PostgresConnection(raw, self._queries)
            except BaseException:
                raw.rollback()
                raise
            # COMMIT, not ROLLBACK: the same for a read-only transaction, but psycopg
            # forgets the connection's prepared statements at every ROLLBACK (one might
            # have undone a PREPARE), and a worker's connections serve reads between
            # claims and records, so none of its statements would ever stay prepared.
            raw.commit()

    def listen(self, channel: str, timeout_seconds: float) -> bool:
        with self._listener_lock:
            try:
                if self._listen_url is None:  # behind PgBouncer with no direct URL: poll
                    time.sleep(timeout_seconds)
                    return False
                if self._listener is None or self._listener.closed:
                    self._listener = psycopg.connect(self._listen_url, autocommit=True)
                    self._listener.execute(f"LISTEN {channel}")
                for _ in self._listener.notifies(timeout=timeout_seconds, stop_after=1):
                    return True
            except psycopg.Error:
                # The listener is an optimisation; callers poll anyway.
                if self._listener is not None:
                    self._listener.close()
                self._listener = None
            return False

    def notify(self, channel: str) -> None:
        with translate_errors("notify"), self._pool.connection() as raw:
            raw.execute(f"NOTIFY {channel}")

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._pool.close()
