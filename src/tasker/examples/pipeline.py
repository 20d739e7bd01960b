"""Handlers of ``examples/data_pipeline``: extract lists the data sets, one transform
instance runs per data set (``step.item``), and load gets all their results."""

from __future__ import annotations

from typing import Any

from tasker.examples import simulate_work
from tasker.runtime.context import StepContext

DATASET_SHARE = {"orders": 0.4, "customers": 0.1, "products": 0.05, "inventory": 0.45}


def extract(step: StepContext) -> dict[str, Any]:
    """Split the source's rows into the four data sets."""
    simulate_work(step)
    rows = int(step.context["rows"])
    counts = {name: round(rows * share) for name, share in DATASET_SHARE.items()}
    return {"source": step.context["source"], "counts": counts, "datasets": list(counts)}


def transform(step: StepContext) -> dict[str, Any]:
    """Clean one data set: here, drop one row in fifty as invalid."""
    simulate_work(step)
    dataset = step.item
    rows = step.results["extract"]["counts"][dataset]
    rejected = rows // 50
    return {"dataset": dataset, "rows": rows - rejected, "rejected": rejected}


def load(step: StepContext) -> dict[str, Any]:
    """Write every transformed data set: the transform instances' results, in order."""
    simulate_work(step)
    parts = {r["dataset"]: r["rows"] for r in step.results["transform"]}
    return {"loaded_rows": sum(parts.values()), "tables": dict(sorted(parts.items()))}
