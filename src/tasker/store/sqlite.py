"""SQLite backend: one file in WAL mode, stdlib ``sqlite3``.

Writes take the database lock up front (``BEGIN IMMEDIATE``) so two processes never
deadlock upgrading a read lock; ``busy_timeout`` makes a writer wait its turn instead
of failing with "database is locked".

SQLite has no notifications, so ``listen`` makes its own: a commit in this process that
made steps ready (the ``notify_steps_ready`` query) wakes listeners at once, and a
commit by another process is seen soon after (``CHANGE_POLL_SECONDS``) from
``PRAGMA data_version``, which changes when another connection commits to the file and
costs no read of any table.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasker.clock import parse_utc
from tasker.exceptions import (
    ConfigurationError,
    DatabaseUnavailable,
    DuplicateKey,
    SchemaNotReady,
    StoreError,
    TransientStoreError,
)
from tasker.store.database import (
    BOOL_COLUMNS,
    JSON_COLUMNS,
    Json,
    Row,
    is_time_column,
    unencodable_text,
)
from tasker.store.queries import load_queries, specialise

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# How often a listener looks for commits by other processes: every 2 ms while work
# arrives, backing off to 50 ms after a quiet second. The interval is a twentieth of the
# time since the last change, so a worker learns of a task created elsewhere within 2 ms
# under traffic and within 5 % of the quiet spell after one. (A look costs about 50 us
# of CPU on this kind of machine, mostly the timed sleep: 2.5 % of a core at 2 ms, 0.1 %
# at 50 ms.)
CHANGE_POLL_SECONDS = (0.002, 0.050)


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: Tasker works in timezone-aware UTC")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def path_from_url(url: str) -> str:
    """``sqlite:///rel/path`` -> ``rel/path``; ``sqlite:////abs`` -> ``/abs``."""
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: expected sqlite:///relative/path.db or sqlite:////abs.db"
        )
    path = url[len("sqlite:///") :]
    if not path:
        raise ConfigurationError(f"bad SQLite URL {url!r}: no file path")
    return path


def _to_sql(value: Any) -> Any:
    if isinstance(value, Json):
        return json.dumps(value.value, default=_json_default)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, list | tuple):
        return json.dumps(list(value), default=_json_default)
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _from_sql(cursor: sqlite3.Cursor, raw: tuple[Any, ...]) -> Row:
    row: Row = {}
    for (name, *_), value in zip(cursor.description, raw, strict=True):
        if value is not None:
            if name in JSON_COLUMNS and isinstance(value, str):
                value = json.loads(value)
            elif name in BOOL_COLUMNS:
                value = bool(value)
            elif is_time_column(name) and isinstance(value, str):
                value = parse_utc(value)
        row[name] = value
    return row


class SQLiteConnection:
    def __init__(self, raw: sqlite3.Connection, queries: dict[str, str]):
        self._raw = raw
        self._queries = queries
        # Set by ``notify_steps_ready``: listeners are woken once the transaction commits.
        self.steps_ready = False

    def _run(self, query: str, params: dict[str, Any]) -> sqlite3.Cursor:
        sql = specialise(self._queries[query], params)
        try:
            return self._raw.execute(sql, {k: _to_sql(v) for k, v in params.items()})
        except UnicodeEncodeError:
            raise unencodable_text(query, params) from None
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise DuplicateKey(str(exc)) from exc
            raise StoreError(f"{query}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientStoreError(f"{query}: {exc}") from exc
            if "no such table" in str(exc):
                raise SchemaNotReady(
                    "the database has no Tasker schema: run `tasker db upgrade`"
                ) from exc
            raise StoreError(f"{query}: {exc}") from exc

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]:
        cursor = self._run(query, params)
        return [_from_sql(cursor, raw) for raw in cursor.fetchall()]

    def fetch_one(self, query: str, /, **params: Any) -> Row | None:
        rows = self.fetch_all(query, **params)
        return rows[0] if rows else None

    def execute(self, query: str, /, **params: Any) -> int:
        if query == "notify_steps_ready":
            self.steps_ready = True
            return 0
        return self._run(query, params).rowcount

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._raw.execute("SAVEPOINT tasker_item")
        try:
            yield
        except BaseException:
            self._raw.execute("ROLLBACK TO tasker_item")
            self._raw.execute("RELEASE tasker_item")
            raise
        self._raw.execute("RELEASE tasker_item")

    def pipeline(self) -> AbstractContextManager[None]:
        return nullcontext()  # in-process: there is no round trip to save

    def execute_script(self, sql: str) -> None:
        # executescript would COMMIT the surrounding transaction; run statement by statement.
        for statement in _split_statements(sql):
            self._raw.execute(statement)


def _split_statements(sql: str) -> list[str]:
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") for part in current.strip().splitlines()
    ):
        statements.append(current)
    return statements


class SQLiteDatabase:
    """A SQLite file shared by threads of this process (one connection, one lock) and
    by other processes (WAL, ``BEGIN IMMEDIATE``, busy timeout)."""

    dialect = "sqlite"
    supports_notify = True  # see the module's docstring: made here, not by SQLite

    def __init__(self, url: str, *, busy_timeout_seconds: float = 30.0):
        self.url = url
        self.path = path_from_url(url)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise DatabaseUnavailable(f"cannot open {self.path}: {parent} does not exist")
        try:
            self._raw = sqlite3.connect(
                self.path,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
                timeout=busy_timeout_seconds,
            )
            self._raw.execute("PRAGMA journal_mode=WAL")
            self._raw.execute("PRAGMA synchronous=NORMAL")
            self._raw.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._queries = load_queries("sqlite")
        self._conn = SQLiteConnection(self._raw, self._queries)
        self._wakeups = threading.Condition()
        self._generation = 0  # commits in this process that made steps ready
        self._data_version: int | None = None  # last seen PRAGMA data_version
        self._last_change = time.monotonic()  # when a listener last saw either kind

    @contextmanager
    def transaction(self) -> Iterator[SQLiteConnection]:
        with self._lock:
            self._begin("BEGIN IMMEDIATE")
            self._conn.steps_ready = False
            try:
                yield self._conn
            except BaseException:
                self._raw.execute("ROLLBACK")
                raise
            else:
                self._raw.execute("COMMIT")
                if self._conn.steps_ready:
                    self.notify("tasker_steps")

    @contextmanager
    def read(self) -> Iterator[SQLiteConnection]:
        with self._lock:
            self._begin("BEGIN")
            try:
                yield self._conn
            finally:
                self._raw.execute("ROLLBACK")

    def _begin(self, statement: str) -> None:
        try:
            self._raw.execute(statement)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TransientStoreError(f"{self.path}: {exc}") from exc
            raise StoreError(f"{self.path}: {exc}") from exc

    def listen(self, channel: str, timeout_seconds: float) -> bool:
        """True once steps may have become ready: a commit in this process that said so
        (at once), or any commit by another process to the file (within
        ``CHANGE_POLL_SECONDS``); False after ``timeout_seconds`` without either.
        Meant for one listening thread per process (a worker's)."""
        fastest, slowest = CHANGE_POLL_SECONDS
        deadline = time.monotonic() + timeout_seconds
        with self._wakeups:
            seen = self._generation
        while True:
            now = time.monotonic()
            pause = min(max((now - self._last_change) / 20, fastest), slowest, deadline - now)
            with self._wakeups:
                if self._generation == seen and pause > 0:
                    self._wakeups.wait(pause)
                changed = self._generation != seen
            if changed or self._changed_elsewhere():
                self._last_change = time.monotonic()
                return True
            if time.monotonic() >= deadline:
                return False

    def _changed_elsewhere(self) -> bool:
        """Whether another connection committed to the file since the last look. Uses the
        shared connection, whose own commits do not count, and only when it is free: while
        it is busy this process is working already."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            (version,) = self._raw.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:  # closed: nothing to wake for
            return False
        finally:
            self._lock.release()
        changed = self._data_version is not None and version != self._data_version
        self._data_version = version
        return changed

    def notify(self, channel: str) -> None:
        with self._wakeups:
            self._generation += 1
            self._wakeups.notify_all()

    def close(self) -> None:
        with self._lock:
            self._raw.close()
