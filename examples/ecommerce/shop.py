"""Handlers of ``shop/process_order`` (order.yaml).

Each handler gets a StepContext: the task ``context``, its parents' ``results`` by step
name, its ``config`` from the template, and the ``attempt`` number. Return a JSON
object; raise RetryableError to try again later, PermanentError to give up.
"""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, RetryableError, StepContext

DECLINED_CARD = "tok_declined"


def validate_order(step: StepContext) -> dict[str, Any]:
    items = step.context["items"]
    total = sum(item["quantity"] * item["unit_price_cents"] for item in items)
    if total <= 0:
        raise PermanentError(f"order {step.context['order_id']} totals {total}: nothing to charge")
    return {"total_cents": total}


def reserve_stock(step: StepContext) -> dict[str, Any]:
    # Derived from the order id, so a retried attempt reserves the same stock again.
    return {"reservation": f"rsv-{step.context['order_id']}"}


def charge_card(step: StepContext) -> dict[str, Any]:
    if step.context["card"] == DECLINED_CARD:
        raise PermanentError("card declined")  # no retry can change the bank's answer
    if step.attempt <= step.config["flaky_attempts"]:
        # The gateway says when to come back; Tasker stores that as next_retry_at.
        raise RetryableError(
            f"{step.config['gateway']} gateway timed out",
            retry_after=step.config["retry_after_seconds"],
        )
    total = step.results["validate_order"]["total_cents"]
    return {"charge_id": f"ch_{step.context['order_id']}", "amount_cents": total}


def ship_order(step: StepContext) -> dict[str, Any]:
    return {
        "tracking": f"TRK{step.context['order_id']:06d}",
        "reservation": step.results["reserve_stock"]["reservation"],
        "charge_id": step.results["charge_card"]["charge_id"],
    }


def send_receipt(step: StepContext) -> dict[str, Any]:
    return {"to": step.context["email"], "tracking": step.results["ship_order"]["tracking"]}
