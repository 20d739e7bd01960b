"""Handlers of ``analytics/daily_etl`` (daily_etl.yaml). One ``clean`` handler serves the
four parallel steps, each told its table by ``config``."""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, StepContext

TABLES = ("orders", "customers", "products", "inventory")


def extract(step: StepContext) -> dict[str, Any]:
    rows = step.context["rows"]
    missing = [table for table in TABLES if table not in rows]
    if missing:
        raise PermanentError(f"export of {step.context['date']} lacks {', '.join(missing)}")
    return {"date": step.context["date"], "rows": {table: rows[table] for table in TABLES}}


def clean(step: StepContext) -> dict[str, Any]:
    table = step.config["table"]
    rows = step.results["extract"]["rows"][table]
    rejected = rows // 100  # one row in a hundred fails validation
    return {"table": table, "rows": rows - rejected, "rejected": rejected}


def load(step: StepContext) -> dict[str, Any]:
    # results holds all four parents, by step name
    cleaned = {r["table"]: r["rows"] for r in step.results.values()}
    return {"date": step.context["date"], "loaded": dict(sorted(cleaned.items()))}
