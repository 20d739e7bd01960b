"""The expense approval: a permanent failure ends the task at once."""

from __future__ import annotations

import sys
from pathlib import Path

from tasker.testing import (
    assert_attempts,
    assert_complete,
    assert_each_step_succeeded_once,
    assert_event_counts,
    assert_status,
    run_task,
)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # so the template's "expenses:..." handlers import
TEMPLATE = HERE / "expense.yaml"


def expense(amount_cents: int) -> dict[str, object]:
    return {"request_id": 7, "employee": "grace@example.com", "amount_cents": amount_cents}


def test_a_small_expense_is_approved_by_policy() -> None:
    run = run_task(TEMPLATE, expense(2_000))

    assert_complete(run)
    assert_each_step_succeeded_once(run)
    assert run.results("notify") == {"to": "grace@example.com", "message": "approved by policy"}


def test_a_larger_expense_needs_the_manager() -> None:
    run = run_task(TEMPLATE, expense(200_000))

    assert_complete(run)
    assert run.results("manager_approval") == {"approver": "manager"}


def test_an_expense_over_the_limit_fails_permanently_without_retries() -> None:
    run = run_task(TEMPLATE, expense(900_000))

    assert_status(run, "error")
    assert_attempts(run, {"check_policy": 1, "manager_approval": 0, "notify": 0})
    assert_event_counts(run, {"step.failed": 1, "step.retry_scheduled": 0, "task.failed": 1})
    error = run.steps["check_policy"]["error"]
    assert (error["class"], error["message"]) == (
        "PermanentError",
        "9000.00 is over the 5000.00 limit",
    )
