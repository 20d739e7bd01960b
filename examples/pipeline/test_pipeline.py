"""The daily ETL: fan-out to four parallel steps, fan-in to load."""

from __future__ import annotations

import sys
from pathlib import Path

from tasker.testing import (
    assert_attempts,
    assert_complete,
    assert_dependency_order,
    assert_event_counts,
    assert_status,
    run_task,
)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # so the template's "etl:..." handlers import
TEMPLATE = HERE / "daily_etl.yaml"
ROWS = {"orders": 1000, "customers": 200, "products": 50, "inventory": 700}
CLEAN_STEPS = ["clean_orders", "clean_customers", "clean_products", "clean_inventory"]


def test_four_tables_are_cleaned_between_extract_and_load() -> None:
    run = run_task(TEMPLATE, {"date": "2026-01-01", "rows": ROWS})

    assert_complete(run)
    assert_dependency_order(run)
    assert run.execution_order[0] == "extract"
    assert sorted(run.execution_order[1:5]) == sorted(CLEAN_STEPS)
    assert run.execution_order[-1] == "load"
    assert run.results("load") == {
        "date": "2026-01-01",
        "loaded": {"customers": 198, "inventory": 693, "orders": 990, "products": 50},
    }
    assert_event_counts(run, {"step.completed": 6, "task.completed": 1})


def test_a_broken_export_stops_the_pipeline_before_any_transform() -> None:
    run = run_task(TEMPLATE, {"date": "2026-01-02", "rows": {"orders": 10}})

    assert_status(run, "error")
    assert_attempts(run, {"extract": 1, **dict.fromkeys(CLEAN_STEPS, 0), "load": 0})
    assert "lacks customers, products, inventory" in run.steps["extract"]["error"]["message"]
