"""Handlers of ``examples/expense_approval``: a policy check that can fail for good, and a
manager's decision that arrives as a signal."""

from __future__ import annotations

from typing import Any

from tasker.examples import simulate_work
from tasker.exceptions import PermanentError
from tasker.runtime.context import StepContext


def submit(step: StepContext) -> dict[str, Any]:
    simulate_work(step)
    return {"request_id": step.context["request_id"], "employee": step.context["employee"]}


def check_policy(step: StepContext) -> dict[str, Any]:
    """Above the limit no retry can help: PermanentError ends the task at once."""
    simulate_work(step)
    amount = int(step.context["amount_cents"])
    limit = int(step.config.get("limit_cents", 1_000_000))
    if amount > limit:
        raise PermanentError(
            f"amount {amount / 100:.2f} exceeds the approval limit of {limit / 100:.2f}",
            amount_cents=amount,
            limit_cents=limit,
        )
    return {"within_policy": True, "headroom_cents": limit - amount}


def manager_approval(step: StepContext) -> dict[str, Any]:
    """Runs once the manager's signal `approval` came; its payload is ``step.signal``."""
    simulate_work(step)
    decision = step.signal if isinstance(step.signal, dict) else {}
    by = decision.get("by", "the manager")
    if not decision.get("approved"):
        raise PermanentError(f"rejected by {by}")
    return {"approved_by": by, "request_id": step.context["request_id"]}


def notify(step: StepContext) -> dict[str, Any]:
    simulate_work(step)
    return {"to": step.context["employee"], "message": "Your expense was approved"}
