"""Named SQL queries, loaded once from ``sql/<dialect>/*.sql``.

A file holds blocks, each introduced by a line ``-- query_name --`` and a one-line
comment saying what it does. Both dialects define the same names; only the bodies
differ (parameter style, locking, JSON and array functions).

A block introduced by ``-- @fragment_name --`` is no query but SQL that queries of the
same dialect include as ``{@fragment_name}``: rules written once (SQLite has no stored
functions to hold them, as PostgreSQL does).

A line ending in ``-- when name`` is an optional filter: it is sent only when the
parameter ``name`` is given (not None). Each combination of given filters is its own
statement, so the planner sees only the conditions that apply and picks the index they
need: the same filters written ``(%(name)s IS NULL OR ...)`` in one statement leave
SQLite, and PostgreSQL under a cached generic plan, scanning every row in id order (one
task's events among 3.4M: 685 ms under the generic plan, 0.1 ms planned for the task).

A block with the comment line ``-- plan: each call`` is never prepared on PostgreSQL:
its best plan depends on how common a filter's value is (a rare status takes its index,
a common one the id order), which a prepared statement's generic plan cannot know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

_HEADER = re.compile(r"^-- (@?[a-z][a-z0-9_]*) --\s*$", re.MULTILINE)
_INCLUDE = re.compile(r"\{@([a-z][a-z0-9_]*)\}")
_EACH_CALL = "\n-- plan: each call\n"
_OPTIONAL = re.compile(r"^.*--\s*when ([a-z_][a-z0-9_]*)\s*\n", re.MULTILINE)


def parse_queries(text: str, source: str = "<sql>") -> dict[str, str]:
    """Split ``text`` into ``{name: sql}``; text before the first header is ignored."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """All named queries of ``dialect`` ('sqlite' or 'postgres')."""
    folder = resources.files("tasker.store").joinpath("sql").joinpath(dialect)
    queries: dict[str, str] = {}
    fragments: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_queries(entry.read_text(), entry.name).items():
            if name in queries or name[1:] in fragments:
                raise ValueError(f"{dialect}/{entry.name}: query {name!r} is defined twice")
            if name.startswith("@"):
                fragments[name[1:]] = _without_description(sql)
            else:
                queries[name] = sql

    def include(match: re.Match[str]) -> str:
        if match.group(1) not in fragments:
            raise ValueError(f"{dialect}: no fragment @{match.group(1)} to include")
        return fragments[match.group(1)]

    return {name: _INCLUDE.sub(include, sql) for name, sql in queries.items()}


@cache
def planned_each_call(sql: str) -> bool:
    """Whether ``sql`` asks to be planned with its values at every call."""
    return _EACH_CALL in sql


def specialise(sql: str, params: Mapping[str, Any]) -> str:
    """``sql`` without the optional filter lines (``-- when name``) whose parameter is
    None or absent in ``params``."""
    optional = optional_filters(sql)
    if not optional:
        return sql
    return _without_filters(sql, frozenset(n for n in optional if params.get(n) is None))


@cache
def optional_filters(sql: str) -> frozenset[str]:
    """The parameters that name an optional filter line of ``sql``."""
    return frozenset(_OPTIONAL.findall(sql + "\n"))


@cache
def _without_filters(sql: str, absent: frozenset[str]) -> str:
    if not absent:
        return sql
    kept = _OPTIONAL.sub(lambda m: "" if m.group(1) in absent else m.group(0), sql + "\n")
    return kept.rstrip("\n")


def _without_description(sql: str) -> str:
    """A fragment's body without its leading comment lines."""
    lines = sql.splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines)


@cache
def load_migrations(dialect: str) -> tuple[tuple[int, str, str], ...]:
    """``(version, name, sql)`` of every migration of ``dialect``, in order."""
    folder = (
        resources.files("tasker.store").joinpath("sql").joinpath(dialect).joinpath("migrations")
    )
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return tuple(sorted(found))
