"""Handlers of the fulfilment example (orders.yaml)."""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, StepContext

MAX_PARCEL_GRAMS = 2_000


def split(step: StepContext) -> dict[str, Any]:
    """Pack the items into parcels of at most 2 kg each."""
    parcels: list[dict[str, Any]] = []
    for item in step.context["items"]:
        if not parcels or parcels[-1]["weight_grams"] + item["grams"] > MAX_PARCEL_GRAMS:
            parcels.append({"parcel": len(parcels) + 1, "weight_grams": 0, "skus": []})
        parcels[-1]["weight_grams"] += item["grams"]
        parcels[-1]["skus"].append(item["sku"])
    for parcel in parcels:
        parcel["order_id"] = step.context["order_id"]
    return {"parcels": parcels}


def label(step: StepContext) -> dict[str, Any]:
    """One child task per parcel: its context is the parcel (the map item)."""
    if step.context["weight_grams"] > MAX_PARCEL_GRAMS:
        raise PermanentError(f"parcel {step.context['parcel']} is too heavy")
    return {"tracking": f"TRK-{step.context['order_id']}-{step.context['parcel']}"}


def hand_over(step: StepContext) -> dict[str, Any]:
    return {"tracking": step.results["label"]["tracking"], "carrier": "post"}


def returns_context(step: StepContext) -> dict[str, Any]:
    """The returns child's context, made from the order and the parcels split found."""
    return {"order_id": step.context["order_id"], "parcels": len(step.results["split"]["parcels"])}


def print_returns_label(step: StepContext) -> dict[str, Any]:
    return {"returns_code": f"RET-{step.context['order_id']}x{step.context['parcels']}"}


def notify(step: StepContext) -> dict[str, Any]:
    """ship_parcels: one {sink: results} per child, in parcel order."""
    tracking = [child["hand_over"]["tracking"] for child in step.results["ship_parcels"]]
    returns = step.results["returns_label"]["print_label"]["returns_code"]
    return {"tracking": tracking, "returns_code": returns}
