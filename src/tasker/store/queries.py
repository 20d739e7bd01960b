"""Named SQL queries, loaded once from ``sql/<dialect>/*.sql``.

A file holds blocks, each introduced by a line ``-- query_name --`` and a one-line
comment saying what it does. Both dialects define the same names; only the bodies
differ (parameter style, locking, JSON and array functions).

A block introduced by ``-- @fragment_name --`` is no query but SQL that queries of the
same dialect include as ``{@fragment_name}``: rules written once (SQLite has no stored
functions to hold them, as PostgreSQL does).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^-- (@?[a-z][a-z0-9_]*) --\s*$", re.MULTILINE)
_INCLUDE = re.compile(r"\{@([a-z][a-z0-9_]*)\}")


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
