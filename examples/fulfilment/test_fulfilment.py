"""Fulfilment with child workflows: one child task per parcel, and a child whose context
a handler makes; the order completes with every child's results."""

from __future__ import annotations

import sys
from pathlib import Path

from tasker.definitions import TemplateDefinition, TemplateRegistry, load_template_file
from tasker.testing import assert_complete, assert_status, run_task

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # so the templates' "fulfil:..." handlers import


def registry_and_order() -> tuple[TemplateRegistry, TemplateDefinition]:
    order, *children = load_template_file(HERE / "orders.yaml")
    registry = TemplateRegistry()
    for child in children:  # run_task registers the order; its children must be known
        registry.add(child)
    return registry, order


def order_context(*grams: int) -> dict[str, object]:
    return {"order_id": 42, "items": [{"sku": f"S{i}", "grams": g} for i, g in enumerate(grams)]}


def test_each_parcel_ships_as_its_own_child_task() -> None:
    registry, order = registry_and_order()

    run = run_task(order, order_context(1_500, 400, 900), registry=registry)

    assert_complete(run)
    assert run.results("notify") == {
        "tracking": ["TRK-42-1", "TRK-42-2"],
        "returns_code": "RET-42x2",
    }
    # One child per parcel, and the returns child: each names the step that started it
    children = [s["child_task_id"] for s in run.task["steps"] if s["child_task_id"]]
    assert len(children) == 3
    assert run.steps["ship_parcels[0]"]["workflow"]["name"] == "ship_parcel"


def test_a_parcel_that_fails_for_good_fails_the_order() -> None:
    registry, order = registry_and_order()

    run = run_task(order, order_context(2_500), registry=registry)

    assert_status(run, "error")
    assert run.steps["ship_parcels[0]"]["error"]["class"] == "ChildTaskFailed"
    assert run.steps["notify"]["status"] == "pending"
