"""The daily ETL: a map over the files extract finds, fan-in to load."""

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


def test_one_clean_instance_runs_per_file_between_extract_and_load() -> None:
    run = run_task(TEMPLATE, {"date": "2026-01-01", "rows": ROWS})

    assert_complete(run)
    assert_dependency_order(run)
    assert run.execution_order[0] == "extract"
    assert run.execution_order[1] == "clean"  # the group starts as it expands
    assert sorted(run.execution_order[2:6]) == [f"clean[{i}]" for i in range(4)]
    assert run.execution_order[-1] == "load"
    assert run.steps["clean"]["instances"] == {"total": 4, "complete": 4}
    assert run.results("load") == {
        "date": "2026-01-01",
        "loaded": {"customers": 198, "inventory": 693, "orders": 990, "products": 50},
    }
    assert_event_counts(run, {"step.completed": 7, "task.completed": 1})


def test_a_smaller_export_runs_fewer_instances() -> None:
    run = run_task(TEMPLATE, {"date": "2026-01-03", "rows": {**ROWS, "returns": 5}})

    assert_complete(run)
    assert run.steps["clean"]["instances"]["total"] == 5


def test_a_broken_export_stops_the_pipeline_before_any_clean() -> None:
    run = run_task(TEMPLATE, {"date": "2026-01-02", "rows": {"orders": 10}})

    assert_status(run, "error")
    assert_attempts(run, {"extract": 1, "clean": 0, "load": 0})
    assert "lacks customers, products, inventory" in run.steps["extract"]["error"]["message"]
