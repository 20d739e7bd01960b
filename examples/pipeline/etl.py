"""Handlers of ``analytics/daily_etl`` (daily_etl.yaml). ``extract`` finds the export's
files; ``clean`` runs once per file (``step.item``); ``load`` gets every result."""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, StepContext

TABLES = ("orders", "customers", "products", "inventory")


def extract(step: StepContext) -> dict[str, Any]:
    rows = step.context["rows"]
    missing = [table for table in TABLES if table not in rows]
    if missing:
        raise PermanentError(f"export of {step.context['date']} lacks {', '.join(missing)}")
    files = [{"table": table, "rows": rows[table]} for table in sorted(rows)]
    return {"date": step.context["date"], "files": files}


def clean(step: StepContext) -> dict[str, Any]:
    table, rows = step.item["table"], step.item["rows"]
    rejected = rows // 100  # one row in a hundred fails validation
    return {"table": table, "rows": rows - rejected, "rejected": rejected}


def load(step: StepContext) -> dict[str, Any]:
    # the results of every clean instance, in the order extract listed the files
    cleaned = {r["table"]: r["rows"] for r in step.results["clean"]}
    return {"date": step.context["date"], "loaded": cleaned}
