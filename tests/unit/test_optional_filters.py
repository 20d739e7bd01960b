"""Optional filters in named queries (``-- when name`` lines, tasker.store.queries): a
call sends only the filters it gives, so each combination is planned for its own index."""

from __future__ import annotations

import re

import pytest

from tasker.store.queries import load_queries, optional_filters, planned_each_call, specialise

DIALECTS = ("sqlite", "postgres")
# Queries that may still test a parameter for NULL, and why that costs no index.
NULL_TESTS_ALLOWED = {
    # picks some of the steps of one task, after the task's steps were found by task_id
    "get_step_readiness_status": "the task's own steps",
}
SQL = """-- Tasks, filtered.
SELECT * FROM tasks
WHERE TRUE
  AND status = :status  -- when status
  AND id < :before_id  -- when before_id
ORDER BY id DESC LIMIT :limit"""


def test_a_filter_line_is_sent_only_when_its_parameter_is_given() -> None:
    # Given a query with two optional filters
    assert optional_filters(SQL) == {"status", "before_id"}
    # When one is given (a falsy value counts as given) and the other is None or absent
    for params in ({"status": "error", "before_id": None}, {"status": ""}):
        sql = specialise(SQL, params)
        # Then only the given filter's line is in the statement, the rest unchanged
        assert "status = :status" in sql
        assert "before_id" not in sql
        assert sql.endswith("ORDER BY id DESC LIMIT :limit")
    # And with both given the statement is the whole text; with none, neither line
    assert specialise(SQL, {"status": "error", "before_id": 5}) == SQL
    assert "AND" not in specialise(SQL, {})


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_query_tests_a_parameter_for_null_to_skip_a_filter(dialect: str) -> None:
    # Given every named query of the dialect, its comments stripped
    parameter_is_null = {
        "sqlite": re.compile(r":[a-z_]+ IS NULL OR"),
        "postgres": re.compile(r"%\([a-z_]+\)s(::[a-z]+(\[\])?)? IS NULL OR"),
    }[dialect]
    found = [
        name
        for name, sql in load_queries(dialect).items()
        if name not in NULL_TESTS_ALLOWED
        and parameter_is_null.search("\n".join(line.split("--")[0] for line in sql.splitlines()))
    ]
    # Then none writes an optional filter as "(param IS NULL OR ...)": one statement for
    # every combination leaves the planner an index it cannot use (a full scan in id order)
    assert found == []


@pytest.mark.parametrize("name", sorted(load_queries("sqlite")))
def test_both_dialects_make_the_same_filters_optional(name: str) -> None:
    sqlite, postgres = (load_queries(d)[name] for d in DIALECTS)
    assert optional_filters(sqlite) == optional_filters(postgres)
    assert planned_each_call(sqlite) == planned_each_call(postgres)


def test_the_task_list_is_planned_at_every_call() -> None:
    assert planned_each_call(load_queries("postgres")["list_tasks"])
    assert not planned_each_call(load_queries("postgres")["claim_steps"])
