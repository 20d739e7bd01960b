"""Handlers of ``examples/ecommerce_order``: an order with a flaky payment gateway."""

from __future__ import annotations

from typing import Any

from tasker.examples import simulate_work
from tasker.exceptions import PermanentError, RetryableError
from tasker.runtime.context import StepContext


def validate(step: StepContext) -> dict[str, Any]:
    """The order's total; an empty or negative order can never be fulfilled."""
    simulate_work(step)
    items = step.context["items"]
    total = sum(item["quantity"] * item["unit_price_cents"] for item in items)
    if total <= 0:
        raise PermanentError(f"order {step.context['order_id']} has nothing to charge")
    return {"total_cents": total, "item_count": sum(item["quantity"] for item in items)}


def reserve(step: StepContext) -> dict[str, Any]:
    """Hold every item; the reservation id is derived from the order, so a retry
    reserves the same stock instead of reserving it twice."""
    simulate_work(step)
    order_id = step.context["order_id"]
    return {"reservation_id": f"rsv-{order_id}", "skus": [i["sku"] for i in step.context["items"]]}


def charge(step: StepContext) -> dict[str, Any]:
    """Charge the total. The demo gateway times out on the first ``flaky_attempts``
    attempts: a RetryableError, so Tasker tries again after the backoff."""
    simulate_work(step)
    if step.attempt <= int(step.config.get("flaky_attempts", 0)):
        raise RetryableError(f"{step.config.get('gateway', 'gateway')} timed out")
    total = step.results["validate"]["total_cents"]
    return {"charge_id": f"ch-{step.context['order_id']}-{step.attempt}", "amount_cents": total}


def ship(step: StepContext) -> dict[str, Any]:
    simulate_work(step)
    reservation = step.results["reserve"]["reservation_id"]
    return {"tracking_number": f"TRK{step.context['order_id']:06d}", "reservation": reservation}


def notify(step: StepContext) -> dict[str, Any]:
    simulate_work(step)
    shipment = step.results["ship"]
    return {
        "to": step.context["customer"],
        "subject": f"Order {step.context['order_id']} is on its way",
        "tracking_number": shipment["tracking_number"],
    }
