"""Every operation of the client, I/O-free: which request it sends and how it reads the
answer. ``Client`` and ``AsyncClient`` only send a :class:`Call` and hand the response
back to it, so the two stay one thin layer over the same code (httpx's split: the logic
in one place, the I/O in the backends) and a test checks they offer the same methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tasker.client._errors import WaitTimeout, error_from_response
from tasker.client._models import (
    Event,
    EventPage,
    Health,
    SignalReceipt,
    Task,
    TaskBatch,
    TaskDag,
    TaskPage,
    Transition,
    TransitionPage,
    execution_context_from_json,
    readiness_from_json,
)
from tasker.store.readiness import StepReadiness, TaskExecutionContext

T = TypeVar("T")

NEXT_CURSOR_HEADER = "Tasker-Next-Cursor"
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None

    @property
    def headers(self) -> dict[str, str]:
        return JSON_HEADERS if self.body is not None else {}

    def result(self, response: httpx.Response) -> T:
        """The answer read, or the exception an error answer stands for, raised."""
        if response.status_code >= 400:
            raise error_from_response(response)
        return self.read(response)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _segment(text: str) -> str:
    """A path segment: a step named ``load_file[0]`` or a signal with spaces, escaped."""
    return quote(text, safe="")


def _query(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _task(response: httpx.Response) -> Task:
    return Task.from_json(response.json())


def _reason_body(reason: str | None) -> bytes | None:
    return None if reason is None else _json({"reason": reason})


# -- tasks ---------------------------------------------------------------------------------


def create_task(
    name: str,
    context: dict[str, Any],
    *,
    namespace: str | None,
    version: str | None,
    idempotency_key: str | None,
    initiator: str | None,
    source_system: str | None,
    reason: str | None,
    tags: Sequence[str],
) -> Call[Task]:
    body = _query(
        namespace=namespace,
        name=name,
        version=version,
        context=context,
        idempotency_key=idempotency_key,
        initiator=initiator,
        source_system=source_system,
        reason=reason,
    )
    if tags:
        body["tags"] = list(tags)
    return Call("POST", "/v1/tasks", _task, body=_json(body))


def create_tasks(tasks: Sequence[Mapping[str, Any]]) -> Call[TaskBatch]:
    body = {"tasks": [dict(task) for task in tasks]}
    return Call(
        "POST", "/v1/tasks:batch", lambda r: TaskBatch.from_json(r.json()), body=_json(body)
    )


def get_task(task_id: int) -> Call[Task]:
    return Call("GET", f"/v1/tasks/{task_id}", _task)


def _task_page(response: httpx.Response) -> TaskPage:
    data = response.json()
    return TaskPage(tuple(Task.from_json(t) for t in data["tasks"]), data["next_cursor"])


def list_tasks(
    *,
    status: str | None,
    namespace: str | None,
    name: str | None,
    limit: int,
    cursor: str | None,
) -> Call[TaskPage]:
    params = _query(status=status, namespace=namespace, name=name, limit=limit, cursor=cursor)
    return Call("GET", "/v1/tasks", _task_page, params=params)


def cancel_task(task_id: int, reason: str | None) -> Call[Task]:
    return Call("POST", f"/v1/tasks/{task_id}/cancel", _task, body=_reason_body(reason))


def retry_task(task_id: int, reason: str | None) -> Call[Task]:
    return Call("POST", f"/v1/tasks/{task_id}/retry", _task, body=_reason_body(reason))


def retry_step(task_id: int, step: str, reason: str | None) -> Call[Task]:
    path = f"/v1/tasks/{task_id}/steps/{_segment(step)}/retry"
    return Call("POST", path, _task, body=_reason_body(reason))


def resolve_step(
    task_id: int, step: str, reason: str, results: Any, branch: Sequence[str] | None
) -> Call[Task]:
    body: dict[str, Any] = {"reason": reason, "results": results}
    if branch is not None:
        body["branch"] = list(branch)
    path = f"/v1/tasks/{task_id}/steps/{_segment(step)}/resolve"
    return Call("POST", path, _task, body=_json(body))


def send_signal(task_id: int, name: str, payload: Any) -> Call[SignalReceipt]:
    path = f"/v1/tasks/{task_id}/signals/{_segment(name)}"
    return Call("POST", path, lambda r: SignalReceipt.from_json(r.json()), body=_json(payload))


# -- inspecting a task ---------------------------------------------------------------------


def _transition_page(response: httpx.Response) -> TransitionPage:
    rows = tuple(Transition.from_json(t) for t in response.json())
    return TransitionPage(rows, response.headers.get(NEXT_CURSOR_HEADER))


def transitions(task_id: int, *, limit: int | None, cursor: str | None) -> Call[TransitionPage]:
    params = _query(limit=limit, cursor=cursor)
    return Call("GET", f"/v1/tasks/{task_id}/transitions", _transition_page, params=params)


def readiness(task_id: int) -> Call[list[StepReadiness]]:
    return Call(
        "GET",
        f"/v1/tasks/{task_id}/readiness",
        lambda r: [readiness_from_json(row) for row in r.json()],
    )


def execution_context(task_id: int) -> Call[TaskExecutionContext]:
    return Call(
        "GET",
        f"/v1/tasks/{task_id}/context",
        lambda r: execution_context_from_json(r.json()),
    )


def dag(task_id: int) -> Call[TaskDag]:
    return Call("GET", f"/v1/tasks/{task_id}/dag", lambda r: TaskDag.from_json(r.json()))


# -- events, health ------------------------------------------------------------------------


def _event_page(response: httpx.Response) -> EventPage:
    data = response.json()
    return EventPage(tuple(Event.from_json(e) for e in data["events"]), data["next"])


def list_events(
    *, after: int, task_id: int | None, name: str | None, limit: int
) -> Call[EventPage]:
    params = _query(after=after, task_id=task_id, name=name, limit=limit)
    return Call("GET", "/v1/events", _event_page, params=params)


def health() -> Call[Health]:
    return Call("GET", "/health/status", lambda r: Health.from_json(r.json()))


def ready() -> Call[dict[str, Any]]:
    def read(response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        return body

    return Call("GET", "/health/ready", read)


# -- waiting -------------------------------------------------------------------------------


def pause_before_next_poll(
    task: Task, *, started: float, now: float, timeout_seconds: float | None, poll_seconds: float
) -> float | None:
    """How long ``wait`` sleeps before asking again: None when ``task`` is settled (done
    waiting); WaitTimeout once ``timeout_seconds`` have passed since ``started``; else
    ``poll_seconds``, cut short at the deadline. Times are monotonic seconds."""
    if task.settled:
        return None
    if timeout_seconds is None:
        return poll_seconds
    left = started + timeout_seconds - now
    if left <= 0:
        raise WaitTimeout(task, timeout_seconds)
    return min(poll_seconds, left)
