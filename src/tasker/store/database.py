"""The driver boundary: a database runs named queries inside transactions.

Engine code is written once against :class:`Connection`; each backend supplies the
dialect's SQL (same query names) and converts values both ways, so nothing above
this layer branches on the dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from tasker.exceptions import ValidationError
from tasker.payloads import text_problems

Row = dict[str, Any]

# Columns whose values are JSON documents; SQLite stores them as text.
JSON_COLUMNS = frozenset(
    {
        "context",
        "tags",
        "trace_context",
        "config",
        "results",
        "error",
        "metadata",
        "payload",
        "definition",
        "namespaces",
        "depends_on",
        "scopes",
        "handlers",
        "templates",
        "handler_errors",
        "branches",
        "map_item",
        "workflow",
    }
)
# Columns holding booleans; SQLite stores them as 0/1.
BOOL_COLUMNS = frozenset(
    {"retryable", "dependencies_satisfied", "retry_eligible", "ready_for_execution", "paused"}
)


def is_time_column(name: str) -> bool:
    """Every timestamp column ends in ``_at`` (``created_at``, ``next_retry_at``...)."""
    return name.endswith("_at")


@dataclass(frozen=True)
class Json:
    """Marks a parameter to be sent as a JSON document (a list of rows, a mapping...).

    Plain lists are sent as arrays of scalars (ids, names), which PostgreSQL reads
    natively and SQLite through ``json_each``.
    """

    value: Any


class Connection(Protocol):
    """One open transaction."""

    def fetch_all(self, query: str, /, **params: Any) -> list[Row]: ...

    def fetch_one(self, query: str, /, **params: Any) -> Row | None: ...

    def execute(self, query: str, /, **params: Any) -> int:
        """Run ``query``; returns the number of rows it changed."""
        ...

    def execute_script(self, sql: str) -> None:
        """Run raw SQL of several statements (migrations only)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A savepoint inside this transaction: an exception leaving the block undoes what
        the block wrote (and propagates); the transaction itself goes on."""
        ...

    def pipeline(self) -> AbstractContextManager[None]:
        """Statements run in the block are sent without waiting for each reply, in one
        round trip, for writes whose results nobody reads (``execute``). Errors may surface
        at the end of the block instead of at their statement. A no-op where the backend
        has no round trips to save (SQLite) or the driver cannot pipeline."""
        ...


class Database(Protocol):
    dialect: str
    url: str
    supports_notify: bool  # whether listen() can wake a worker before its poll interval

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction: committed on normal exit, rolled back on an exception."""
        ...

    def read(self) -> AbstractContextManager[Connection]:
        """A read-only snapshot for queries that change nothing."""
        ...

    def listen(self, channel: str, timeout_seconds: float) -> bool:
        """Wait up to ``timeout_seconds`` for a notification; False when none came
        or the backend has no notifications (callers poll)."""
        ...

    def notify(self, channel: str) -> None: ...

    def close(self) -> None: ...


def unencodable_text(query: str, params: Mapping[str, Any]) -> ValidationError:
    """What a driver's UnicodeEncodeError means: a text parameter holds a lone surrogate
    (invalid UTF-8 from a command line, say), which no database can store or match.
    The error names the parameter, so a lookup by such a name is bad input (exit 2, 422)."""
    found = [
        f"{name} {text!r} {problem}"
        for name, value in params.items()
        for text in (value if isinstance(value, list | tuple) else [value])
        if isinstance(text, str)
        for problem in text_problems(text)
    ]
    return ValidationError("; ".join(found) or f"{query}: a parameter is not valid Unicode")
