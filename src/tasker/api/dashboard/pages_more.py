"""The dashboard's other pages: workers, templates (with a create-task form validated
against the context schema), and analytics (windows, and the last 24 hours hour by hour)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from tasker.api.dashboard import views
from tasker.api.dashboard.web import DashboardError, read_form, render, viewer, writer
from tasker.api.deps import TaskerDep
from tasker.api.routes_templates import known_templates
from tasker.api.routes_workers import worker_views
from tasker.definitions import TemplateDefinition
from tasker.engine.creation import TaskRequest
from tasker.exceptions import IdempotencyConflict, TaskerError, TemplateNotFound, ValidationError
from tasker.facade import Tasker
from tasker.store.readiness import TimelineBucket

router = APIRouter(include_in_schema=False)

Form = Annotated[dict[str, str], Depends(read_form)]
WINDOWS = (("last hour", timedelta(hours=1)), ("last 24 hours", timedelta(hours=24)),
           ("last 7 days", timedelta(days=7)))  # fmt: skip
SLOWEST_SHOWN = 10


@router.get("/workers", response_class=Response)
def workers_page(request: Request, tasker: TaskerDep) -> Response:
    who = viewer(request)
    workers = worker_views(tasker)
    return render(
        request,
        "workers.html",
        {"title": "Workers", "workers": workers, "stream": "", "now": tasker.now()},
        who=who,
    )


@router.get("/templates", response_class=Response)
def templates_page(request: Request, tasker: TaskerDep) -> Response:
    who = viewer(request)
    return render(
        request,
        "templates.html",
        {"title": "Templates", "templates": known_templates(tasker)},
        who=who,
    )


def find_template(tasker: Tasker, namespace: str, name: str, version: str | None) -> Any:
    try:
        return tasker.template(name, namespace, version)
    except TemplateNotFound as exc:
        raise DashboardError(404, "No such template", str(exc), back="/templates") from exc


@router.get("/templates/{namespace}/{name}", response_class=Response)
def template_page(
    request: Request,
    namespace: str,
    name: str,
    tasker: TaskerDep,
    version: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    who = viewer(request)
    template = find_template(tasker, namespace, name, version)
    return render(request, "template.html", template_context(template, {}), who=who)


def template_context(
    template: TemplateDefinition, form: dict[str, str], errors: list[str] | None = None
) -> dict[str, Any]:
    levels = template.dependency_levels()
    dag = views.layout_dag(
        [
            views.DagInput(spec.name, "template", levels[spec.name], list(spec.depends_on))
            for spec in template.steps
        ]
    )
    schema = template.context_schema
    return {
        "title": f"Template {template.namespace}/{template.name}",
        "template": template,
        "schema_text": json.dumps(schema, indent=2, sort_keys=True) if schema else None,
        "dag": dag,
        "node_width": views.NODE_WIDTH,
        "node_height": views.NODE_HEIGHT,
        "levels": levels,
        "form": {"context": "{}", **form},
        "errors": errors or [],
    }


@router.post("/templates/{namespace}/{name}/tasks", response_class=Response)
def create_task(
    request: Request, namespace: str, name: str, form: Form, tasker: TaskerDep
) -> Response:
    """Create a task from the form; the context's errors come back inline (422)."""
    who = writer(request, form)
    template = find_template(tasker, namespace, name, form.get("version") or None)
    errors: list[str] = []
    try:
        context = json.loads(form.get("context") or "{}")
    except json.JSONDecodeError as exc:
        errors = [f"the context is not JSON: {exc}"]
    if not errors:
        request_ = TaskRequest(
            name=template.name,
            namespace=template.namespace,
            version=template.version,
            context=context,
            idempotency_key=(form.get("idempotency_key") or "").strip() or None,
            reason=(form.get("reason") or "").strip() or None,
            initiator="dashboard",
        )
        try:
            task_id, _ = tasker.create_task(request_, actor=who.actor)
        except ValidationError as exc:
            errors = exc.errors or [str(exc)]
        except IdempotencyConflict as exc:
            errors = [str(exc)]
        except TaskerError as exc:
            errors = [str(exc)]
        else:
            return RedirectResponse(f"/tasks/{task_id}?notice=created", status_code=303)
    return render(
        request, "template.html", template_context(template, form, errors), status=422, who=who
    )


@router.get("/analytics", response_class=Response)
def analytics_page(request: Request, tasker: TaskerDep) -> Response:
    who = viewer(request)
    now = tasker.now()
    windows = [(label, asdict(tasker.analytics(now - span))) for label, span in WINDOWS]
    steps, tasks = tasker.slowest(now - timedelta(hours=24), SLOWEST_SHOWN)
    hours = timeline_charts(tasker.step_timeline(hour_start(now) - timedelta(hours=23),
                                                 timedelta(hours=1), now))  # fmt: skip
    charts = [
        chart("Tasks per minute", windows, "task_throughput_per_minute", "{:.2f}"),
        chart("Error rate", windows, "error_rate", "{:.0%}"),
        chart("Mean task duration (s)", windows, "avg_task_duration_seconds", "{:.2f}"),
        chart("Mean step duration (s)", windows, "avg_step_duration_seconds", "{:.3f}"),
    ]
    return render(
        request,
        "analytics.html",
        {
            "title": "Analytics",
            "windows": windows,
            "charts": charts,
            "hours": hours,
            "slow_steps": [asdict(s) for s in steps],
            "slow_tasks": [asdict(t) for t in tasks],
        },
        who=who,
    )


def chart(
    title: str, windows: list[tuple[str, dict[str, Any]]], key: str, fmt: str
) -> dict[str, Any]:
    """A horizontal bar per window, scaled to the largest value."""
    values = [float(metrics[key] or 0) for _, metrics in windows]
    top = max(values) or 1.0
    bars = [
        {"label": label, "value": fmt.format(value), "width": round(300 * value / top)}
        for (label, _), value in zip(windows, values, strict=True)
    ]
    return {"title": title, "bars": bars}


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


TIMELINE_WIDTH, TIMELINE_HEIGHT = 480, 120
PERCENTILES = (("p50", "p50_seconds"), ("p95", "p95_seconds"), ("p99", "p99_seconds"))


def timeline_charts(buckets: list[TimelineBucket]) -> dict[str, Any]:
    """Columns of steps finished per bucket (the failed ones on top), the error rate per
    bucket, and the duration percentiles as lines, all on the same horizontal scale."""
    step = TIMELINE_WIDTH / max(1, len(buckets))

    def y(value: float, top: float) -> float:
        # 4 px of room above the tallest value, so a dot there is whole
        return round(TIMELINE_HEIGHT - (TIMELINE_HEIGHT - 4) * value / (top or 1.0), 1)

    most = max((b.completed + b.failed for b in buckets), default=0)
    slowest = max((b.p99_seconds or 0.0 for b in buckets), default=0.0)
    columns = []
    for i, b in enumerate(buckets):
        total = b.completed + b.failed
        columns.append(
            {
                "x": round(i * step + 1, 1),
                "width": round(max(step - 2, 1), 1),
                "total_y": y(total, most),
                "failed_y": y(b.failed, most),
                "error_y": y(b.error_rate, 1.0),
                "bucket": b,
            }
        )
    lines = []
    for name, key in PERCENTILES:
        points = [
            (round(i * step + step / 2, 1), y(getattr(b, key), slowest), getattr(b, key), b)
            for i, b in enumerate(buckets)
            if getattr(b, key) is not None
        ]
        lines.append(
            {
                "name": name,
                "points": " ".join(f"{x},{py}" for x, py, _, _ in points),
                "dots": [{"x": x, "y": py, "seconds": v, "bucket": b} for x, py, v, b in points],
            }
        )
    return {
        "width": TIMELINE_WIDTH,
        "height": TIMELINE_HEIGHT,
        "columns": columns,
        "lines": lines,
        "most": most,
        "slowest": slowest,
        "buckets": buckets,
    }
