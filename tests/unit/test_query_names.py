"""Named queries: both dialects define the same names, each described, with the same
parameters. Read from the ``.sql`` files alone, no database needed."""

from __future__ import annotations

import re

import pytest

from tasker.store.queries import load_queries

DIALECTS = ("sqlite", "postgres")
# Parameters as each driver spells them: sqlite3 ``:name``, psycopg ``%(name)s``.
PARAMETER = {
    "sqlite": re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)"),
    "postgres": re.compile(r"%\(([a-z_][a-z0-9_]*)\)s"),
}


def _code(sql: str) -> str:
    """``sql`` without its ``--`` comments, so prose never counts as a parameter."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def test_both_dialects_define_the_same_query_names() -> None:
    # Given the named blocks of each dialect's .sql files
    sqlite, postgres = (set(load_queries(d)) for d in DIALECTS)
    # Then every name exists in both: the engine runs one name on either backend
    assert sorted(sqlite - postgres) == [], "only in sql/sqlite/"
    assert sorted(postgres - sqlite) == [], "only in sql/postgres/"
    assert len(sqlite) > 50  # the loader found the files at all


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_opens_with_a_one_line_description(dialect: str) -> None:
    # Given each block of the dialect, its header stripped by the loader
    undescribed = [
        name
        for name, sql in load_queries(dialect).items()
        if not re.fullmatch(r"-- \S.*", sql.splitlines()[0])
    ]
    # Then its first line is a comment saying what it does
    assert undescribed == []


@pytest.mark.parametrize("name", sorted(load_queries("sqlite")))
def test_both_dialects_take_the_same_parameters(name: str) -> None:
    # Given one query name; When its parameters are read from each dialect's body
    found = {
        dialect: set(PARAMETER[dialect].findall(_code(load_queries(dialect)[name])))
        for dialect in DIALECTS
    }
    # Then they agree: a caller passes one set of keyword arguments to either backend
    assert found["sqlite"] == found["postgres"]
