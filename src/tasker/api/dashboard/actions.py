"""The dashboard's actions and its login.

Each action is two requests: a GET shows what will happen and asks for a reason (the
confirmation, which works without JavaScript and from the keyboard), and its form POSTs
the change. A POST checks the CSRF field and ``tasks:write`` (``web.writer``), calls the
facade as the viewer's actor, and redirects to the task (303), or shows why the change
was refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from tasker.api.dashboard.web import (
    TOKEN_COOKIE,
    DashboardError,
    check_csrf,
    csrf_for,
    finish,
    read_form,
    render,
    secure_cookies,
    viewer,
    writer,
)
from tasker.api.deps import TaskerDep
from tasker.api.errors import tasker_error_status
from tasker.api.security import READ, authenticator
from tasker.exceptions import NotFound, TaskerError
from tasker.facade import Tasker

router = APIRouter(include_in_schema=False)

Form = Annotated[dict[str, str], Depends(read_form)]
TOKEN_COOKIE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Action:
    title: str  # "Retry step {step}"
    button: str
    explain: str
    needs_step: bool = False
    reason_required: bool = False
    takes_results: bool = False
    needs_signal: bool = False  # a signal name (``wait_for``) instead of a reason


ACTIONS = {
    "cancel": Action(
        "Cancel task {task}", "Cancel the task", "Its unfinished steps are cancelled."
    ),
    "retry": Action(
        "Retry task {task}",
        "Retry the task",
        "Every failed step is re-opened with its attempts reset.",
    ),
    "retry-step": Action(
        "Retry step {step} of task {task}",
        "Retry the step",
        "The step is re-opened with its attempts reset.",
        needs_step=True,
    ),
    "resolve-step": Action(
        "Resolve step {step} of task {task} by hand",
        "Resolve the step",
        "The step counts as done; its dependents run with the results given here.",
        needs_step=True,
        reason_required=True,
        takes_results=True,
    ),
    "signal": Action(
        "Send signal {signal} to task {task}",
        "Send the signal",
        "The step waiting for it goes on: without a handler the payload becomes its "
        "results; with one, the handler runs with the payload as step.signal.",
        needs_signal=True,
    ),
}


def _action(name: str) -> Action:
    if name not in ACTIONS:
        raise DashboardError(404, "No such action", f"unknown action {name!r}")
    return ACTIONS[name]


@router.get("/tasks/{task_id}/actions/{name}", response_class=Response)
def confirm_page(
    request: Request,
    task_id: int,
    name: str,
    tasker: TaskerDep,
    step: Annotated[str | None, Query(max_length=200)] = None,
    signal: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    who = viewer(request)
    action = _action(name)
    if action.needs_step and not step:
        raise DashboardError(400, "Which step?", "this action needs ?step=NAME")
    if action.needs_signal and not signal:
        raise DashboardError(400, "Which signal?", "this action needs ?signal=NAME")
    try:
        task = tasker.get_task(task_id, with_steps=False)
    except NotFound as exc:
        raise DashboardError(404, "No such task", str(exc), back="/") from exc
    context = {
        "title": action.title.format(task=task_id, step=step, signal=signal),
        "action": action,
        "name": name,
        "task": task,
        "step": step,
        "signal": signal,
        "form": {},
        "error": None,
    }
    if not who.can_write:
        raise DashboardError(403, "Not allowed", "Your token may look, not act.")
    return render(request, "confirm.html", context, who=who)


@router.post("/tasks/{task_id}/actions/{name}", response_class=Response)
def do_action(request: Request, task_id: int, name: str, form: Form, tasker: TaskerDep) -> Response:
    who = writer(request, form)
    action = _action(name)
    step = form.get("step") or None
    reason = (form.get("reason") or "").strip() or None
    back = f"/tasks/{task_id}"
    if action.needs_step and not step:
        raise DashboardError(400, "Which step?", "the form names no step", back=back)
    if action.needs_signal and not form.get("signal"):
        raise DashboardError(400, "Which signal?", "the form names no signal", back=back)
    if action.reason_required and not reason:
        raise DashboardError(422, "A reason is needed", "say why, for the history", back=back)
    try:
        done = run(tasker, name, task_id, step, reason, form, who.actor)
    except TaskerError as exc:
        status, _ = tasker_error_status(exc)
        raise DashboardError(status, "The change was refused", str(exc), back=back) from exc
    notice = quote(f"{action.button.lower().replace('the ', '')}: {done}")
    return RedirectResponse(f"{back}?notice={notice}", status_code=303)


def run(
    tasker: Tasker,
    name: str,
    task_id: int,
    step: str | None,
    reason: str | None,
    form: dict[str, str],
    actor: str,
) -> str:
    """Carry out the action; returns what the notice says of it."""
    if name == "signal":
        receipt = tasker.signal_task(
            task_id, form["signal"], _json_field(form, "payload", task_id), actor=actor
        )
        return "done" if receipt.created else "it had come before, with the same payload"
    if name == "cancel":
        tasker.cancel_task(task_id, actor=actor, reason=reason)
    elif name == "retry":
        tasker.retry_task(task_id, actor=actor, reason=reason)
    elif name == "retry-step" and step:
        tasker.retry_step(task_id, step, actor=actor, reason=reason)
    elif name == "resolve-step" and step and reason:
        tasker.resolve_step(
            task_id, step, reason=reason, actor=actor, results=_json_field(form, "results", task_id)
        )
    return "done"


def _json_field(form: dict[str, str], field: str, task_id: int) -> Any:
    """A form field holding JSON (empty: None)."""
    text = (form.get(field) or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DashboardError(
            422, f"The {field} is not JSON", str(exc), back=f"/tasks/{task_id}"
        ) from exc


# -- login -------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Only a path of this site (never ``//host`` or a URL): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def login_response(request: Request, message: str | None, next_path: str, status: int) -> Response:
    return render(
        request,
        "login.html",
        {"title": "Sign in", "message": message, "next": next_path, "csrf": csrf_for(request)},
        status=status,
    )


@router.get("/login", response_class=Response)
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    return login_response(request, None, _safe_next(next), 200)


@router.post("/login", response_class=Response)
def login(request: Request, form: Form) -> Response:
    check_csrf(request, form)
    next_path = _safe_next(form.get("next"))
    auth = authenticator(request)
    if auth.verifier is None:
        return RedirectResponse(next_path, status_code=303)
    text = (form.get("token") or "").strip()
    token = auth.verifier.authenticate(text) if text else None
    if token is None:
        return login_response(request, "That token is unknown or revoked.", next_path, 401)
    if not token.allows(READ):
        message = f"Token {token.name!r} lacks the scope {READ!r}."
        return login_response(request, message, next_path, 403)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        text,
        max_age=TOKEN_COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/",
    )
    finish(request, response)
    return response


@router.post("/logout", response_class=Response)
def logout(request: Request, form: Form) -> Response:
    check_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    finish(request, response)
    return response
