"""Handlers of ``finance/expense_approval`` (expense.yaml)."""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, StepContext


def submit(step: StepContext) -> dict[str, Any]:
    return {"request_id": step.context["request_id"], "amount_cents": step.context["amount_cents"]}


def check_policy(step: StepContext) -> dict[str, Any]:
    amount = step.results["submit"]["amount_cents"]
    limit = step.config["limit_cents"]
    if amount > limit:
        raise PermanentError(f"{amount / 100:.2f} is over the {limit / 100:.2f} limit")
    return {"approved_automatically": amount <= limit // 10}


def manager_approval(step: StepContext) -> dict[str, Any]:
    """Runs once the signal `approval` came: its payload is ``step.signal``."""
    decision = step.signal if isinstance(step.signal, dict) else {}
    if not decision.get("approved"):
        raise PermanentError(f"rejected by {decision.get('by', 'the manager')}")
    return {"approver": decision.get("by", "manager")}


def notify(step: StepContext) -> dict[str, Any]:
    approver = step.results["manager_approval"]["approver"]
    return {"to": step.context["employee"], "message": f"approved by {approver}"}
