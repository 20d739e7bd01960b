"""The dashboard's task pages: the list (filters, counts per status, cursor pages) and a
task (its DAG, steps, readiness in words, history, events), plus the cookie-authenticated
event stream their live updates follow and a step's whole results as JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from tasker.api.dashboard import views
from tasker.api.dashboard.web import DashboardError, finish, render, viewer
from tasker.api.deps import DIGITS_ONLY, TaskerDep
from tasker.api.routes_events import event_stream
from tasker.exceptions import NotFound, TaskerError
from tasker.facade import Tasker

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
EVENTS_SHOWN = 500
INSTANCES_SHOWN = 10  # rows per map group on the page; the task's JSON has them all
STATUS_ORDER = (
    "pending",
    "in_progress",
    "error",
    "complete",
    "skipped",
    "cancelled",
    "resolved_manually",
)
DONE_STEP_STATES = ("complete", "resolved_manually", "skipped")
MAX_ID = 2**63 - 1

Text = Annotated[str | None, Query(max_length=200)]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID), DIGITS_ONLY]


def _blank(value: str | None) -> str | None:
    value = (value or "").strip().replace("\x00", "")
    return value or None


@router.get("/", response_class=Response)
def tasks_page(
    request: Request,
    tasker: TaskerDep,
    status: Text = None,
    namespace: Text = None,
    name: Text = None,
    q: Text = None,
    before: Cursor = None,
) -> Response:
    who = viewer(request)
    status, namespace, name, q = _blank(status), _blank(namespace), _blank(name), _blank(q)
    if q is not None:
        found = find_task(tasker, q)
        if found is not None:
            return RedirectResponse(f"/tasks/{found}", status_code=303)
    tasks = tasker.list_tasks(
        status=status, namespace=namespace, name=name, limit=PAGE_SIZE + 1, before_id=before
    )
    more = len(tasks) > PAGE_SIZE
    tasks = tasks[:PAGE_SIZE]
    counts = tasker.task_counts(namespace=namespace, name=name)
    ordered = [(s, counts.get(s, 0)) for s in STATUS_ORDER if s in counts or s != "skipped"]
    ordered += [(s, n) for s, n in sorted(counts.items()) if s not in STATUS_ORDER]
    filters = {"status": status, "namespace": namespace, "name": name}
    return render(
        request,
        "tasks.html",
        {
            "title": "Tasks",
            "tasks": tasks,
            "counts": ordered,
            "total": sum(counts.values()),
            "filters": filters,
            "query": q,
            "not_found": q is not None,
            "statuses": STATUS_ORDER,
            "before": before,
            "next_before": tasks[-1]["id"] if more else None,
            "stream": f"/ui/stream?after={tasker.last_event_id()}",
        },
        who=who,
    )


def find_task(tasker: Tasker, q: str) -> int | None:
    """A task by its id, else by its idempotency key."""
    if q.isdigit() and int(q) <= MAX_ID:
        try:
            tasker.task_status(int(q))
            return int(q)
        except NotFound:
            pass
    return tasker.task_by_idempotency_key(q)


@router.get("/tasks/{task_id}", response_class=Response)
def task_page(request: Request, task_id: int, tasker: TaskerDep) -> Response:
    who = viewer(request)
    if not 1 <= task_id <= MAX_ID:
        raise DashboardError(404, "No such task", f"task {task_id} does not exist")
    try:
        page = task_details(tasker, task_id)
    except NotFound as exc:
        raise DashboardError(404, "No such task", str(exc), back="/") from exc
    page["request_notice"] = request.query_params.get("notice")
    return render(request, "task.html", page, who=who)


def task_details(tasker: Tasker, task_id: int) -> dict[str, Any]:
    """Everything the task page shows, read through the facade."""
    task = tasker.get_task(task_id)
    context = tasker.execution_context(task_id)
    readiness = {row.name: row for row in tasker.readiness(task_id)}
    levels = tasker.dependency_levels(task_id)
    transitions = tasker.transitions(task_id)
    transitions.sort(key=lambda t: (t["created_at"], t["entity"] == "step", t["id"]))
    events = tasker.event_page(0, task_id=task_id, limit=EVENTS_SHOWN)
    handlers = step_handlers(tasker, task)
    now = tasker.now()
    statuses = {s["name"]: s["status"] for s in task["steps"]}
    by_name = {s["name"]: s for s in task["steps"]}
    failures: dict[str, list[dict[str, Any]]] = {}
    for t in transitions:
        if t["entity"] == "step" and t["to_state"] == "error":
            failures.setdefault(t["step_name"], []).append(t)
    steps = []
    shown: dict[str, int] = {}  # map group -> instance rows shown
    for step in task["steps"]:
        group = step.get("group")
        if group is not None:
            shown[group] = shown.get(group, 0) + 1
            if shown[group] > INSTANCES_SHOWN:
                continue
        handler = handlers.get(group or step["name"])
        row = readiness.get(step["name"])
        waiting = views.waiting_parents(step["depends_on"], statuses, DONE_STEP_STATES)
        blocking = (
            views.blocking_reason(
                row,
                now=now,
                handler=handler,
                waiting_on=waiting,
                signal=step.get("wait_for"),
            )
            if row is not None
            else None
        )
        if step.get("instances") is not None:
            blocking = views.Blocking(views.map_summary(step.get("map"), step["instances"]))
        results, cut = views.preview_json(step["results"])
        steps.append(
            {
                **step,
                "level": levels.get(step["id"], 0),
                "blocking": blocking,
                "handler": handler,
                "results_text": results if step["results"] is not None else None,
                "results_cut": cut,
                "failures": failures.get(step["name"], []),
            }
        )
        if group is not None and shown[group] == INSTANCES_SHOWN:
            total = (by_name.get(group, {}).get("instances") or {}).get("total", 0)
            if total > INSTANCES_SHOWN:
                steps[-1]["more_instances"] = total - INSTANCES_SHOWN
    # Map instances are drawn as their group: one node with the count, not N nodes.
    dag = views.layout_dag(
        [
            views.DagInput(
                s["name"],
                s["status"],
                s["level"],
                s["depends_on"],
                f"step-{s['id']}",
                count=(s.get("instances") or {}).get("total"),
            )
            for s in steps
            if s.get("group") is None
        ]
    )
    context_text, context_cut = views.preview_json(task["context"])
    last_id = events[-1]["id"] if events else 0
    return {
        "title": f"Task {task_id}",
        "task": task,
        "final": task["status"] in views.FINAL_TASK_STATES,
        "context_text": context_text,
        "context_cut": context_cut,
        "execution": asdict(context),
        "steps": steps,
        "dag": dag,
        "node_width": views.NODE_WIDTH,
        "node_height": views.NODE_HEIGHT,
        "transitions": transitions,
        "events": events,
        "events_cut": len(events) == EVENTS_SHOWN,
        "stream": f"/ui/stream?task_id={task_id}&after={last_id}",
    }


def step_handlers(tasker: Tasker, task: dict[str, Any]) -> dict[str, str]:
    """Each step's handler, from the task's template (when this server can read it)."""
    try:
        template = tasker.template(task["name"], task["namespace"], task["version"])
    except TaskerError:
        return {}
    return {spec.name: spec.handler for spec in template.steps if spec.handler}


@router.get("/tasks/{task_id}/steps/{step}/results.json", response_class=Response)
def step_results(request: Request, task_id: int, step: str, tasker: TaskerDep) -> Response:
    """A step's whole results (the page shows the first few thousand characters)."""
    viewer(request)
    try:
        task = tasker.get_task(task_id) if 1 <= task_id <= MAX_ID else None
    except NotFound:
        task = None
    found = [s for s in (task or {}).get("steps", []) if s["name"] == step]
    if not found:
        raise DashboardError(404, "No such step", f"task {task_id} has no step {step!r}")
    response = JSONResponse(
        found[0]["results"],
        headers={"Content-Disposition": f'attachment; filename="task-{task_id}-results.json"'},
    )
    finish(request, response)
    return response


@router.get("/ui/stream", response_class=Response)
async def ui_stream(
    request: Request,
    tasker: TaskerDep,
    after: Cursor = None,
    task_id: Cursor = None,
) -> Response:
    """The event stream of ``/v1/events/stream``, authenticated by the dashboard's cookie
    (an EventSource cannot send an Authorization header)."""
    viewer(request)
    last = request.headers.get("last-event-id", "").strip()
    cursor = int(last) if last.isdigit() and int(last) <= MAX_ID else (after or 0)
    return StreamingResponse(
        event_stream(request, tasker, cursor, task_id, None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
