"""The expense approval: it waits for a manager's signal; a permanent failure ends the
task at once."""

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


def test_an_expense_waits_for_the_manager_and_is_approved() -> None:
    run = run_task(TEMPLATE, expense(2_000), signals={"approval": {"approved": True, "by": "ann"}})

    assert_complete(run)
    assert_each_step_succeeded_once(run)
    assert run.results("notify") == {"to": "grace@example.com", "message": "approved by ann"}
    assert len(run.events_named("step.signal_received")) == 1


def test_without_the_signal_the_task_waits() -> None:
    run = run_task(TEMPLATE, expense(2_000))

    assert_status(run, "in_progress")
    assert run.steps["manager_approval"]["status"] == "pending"
    assert_attempts(run, {"submit": 1, "check_policy": 1, "manager_approval": 0, "notify": 0})


def test_a_rejection_fails_the_request_for_good() -> None:
    run = run_task(TEMPLATE, expense(200_000), signals={"approval": {"approved": False}})

    assert_status(run, "error")
    assert run.steps["manager_approval"]["error"]["message"] == "rejected by the manager"
    assert_attempts(run, {"manager_approval": 1, "notify": 0})


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
