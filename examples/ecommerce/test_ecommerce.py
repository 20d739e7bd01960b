"""The order workflow, tested with tasker.testing: each test runs a real task to its end
on a temporary SQLite file; backoff is skipped in time by a fake clock."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tasker.exceptions import ValidationError
from tasker.testing import (
    assert_attempts,
    assert_complete,
    assert_dependency_order,
    assert_each_step_succeeded_once,
    assert_event_counts,
    assert_status,
    run_task,
)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # so the template's "shop:..." handlers import
TEMPLATE = HERE / "order.yaml"


def order(**changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "order_id": 42,
        "email": "ada@example.com",
        "card": "tok_visa",
        "items": [{"sku": "KB-01", "quantity": 2, "unit_price_cents": 1500}],
    }
    return {**context, **changes}


def test_an_order_is_charged_shipped_and_receipted() -> None:
    run = run_task(TEMPLATE, order())

    assert_complete(run)
    assert_each_step_succeeded_once(run)
    assert_dependency_order(run)
    assert run.results("charge_card") == {"charge_id": "ch_42", "amount_cents": 3000}
    assert run.results("send_receipt") == {"to": "ada@example.com", "tracking": "TRK000042"}


def test_a_flaky_gateway_is_retried_after_the_delay_it_asks_for() -> None:
    # plans= overrides step config: here the sandbox gateway times out twice
    run = run_task(TEMPLATE, order(), plans={"charge_card": {"flaky_attempts": 2}})

    assert_complete(run)
    assert_attempts(run, {"charge_card": 3, "ship_order": 1})
    assert_event_counts(run, {"step.retry_scheduled": 2, "step.completed": 5})
    for event in run.events_named("step.retry_scheduled"):
        failed = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
        retry = datetime.fromisoformat(event["payload"]["next_retry_at"])
        assert 1.8 <= (retry - failed).total_seconds() <= 2.2  # retry_after 2 s, jitter 10 %


def test_a_declined_card_fails_the_order_at_once_and_nothing_ships() -> None:
    run = run_task(TEMPLATE, order(card="tok_declined"))

    assert_status(run, "error")
    assert_attempts(run, {"charge_card": 1, "ship_order": 0, "send_receipt": 0})
    assert run.steps["charge_card"]["error"]["message"] == "card declined"
    assert "ship_order" not in run.execution_order


def test_an_order_without_items_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValidationError) as refused:
        run_task(TEMPLATE, order(items=[]))

    assert any("items" in error for error in refused.value.errors)
