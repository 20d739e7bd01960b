"""``/v1/tasks``: create, list, inspect and recover tasks.

Every route is a plain ``def``: Tasker is synchronous and FastAPI runs these in its thread
pool. Writes pass the caller's actor (``api`` or ``token:NAME``) into the history.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import ValidationError as BodyError

from tasker.api.deps import (
    COMMON_ERRORS,
    DIGITS_ONLY,
    Filter,
    TaskerDep,
    error_responses,
    group_levels,
)
from tasker.api.errors import ApiError
from tasker.api.schemas import (
    NO_NUL,
    ActionRequest,
    AnyDocument,
    ExecutionContextOut,
    ReadinessOut,
    ResolveRequest,
    SignalOut,
    Status,
    TaskBatchCreate,
    TaskBatchOut,
    TaskCreate,
    TaskDag,
    TaskOut,
    TaskPage,
    TransitionOut,
)
from tasker.api.security import Reader, Writer
from tasker.engine.batch import BatchItemResult
from tasker.engine.creation import TaskRequest

MAX_ID = 2**63 - 1  # ids are bigint; a larger one is a 422, never a database error


TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id."), DIGITS_ONLY]
StepName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="The step's name.")
]

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=COMMON_ERRORS)


# -- cursors -------------------------------------------------------------------------------


def encode_cursor(before_id: int) -> str:
    raw = json.dumps({"before_id": before_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues before; 422 for anything this API did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        before_id = data["before_id"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        before_id = None
    if isinstance(before_id, bool) or not isinstance(before_id, int) or before_id < 1:
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned", [cursor])
    return min(before_id, MAX_ID)


# -- routes --------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    summary="Create a task",
    responses={
        200: {"model": TaskOut, "description": "The task this idempotency key already made."},
        201: {"description": "A new task."},
        **error_responses(404, 409),
    },
    operation_id="createTask",
)
def create_task(body: TaskCreate, response: Response, tasker: TaskerDep, who: Writer) -> Any:
    task_id, created = tasker.create_task(task_request(body), actor=who.actor)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/tasks/{task_id}"
    return tasker.get_task(task_id)


# Declared before /{task_id} routes for readability only: ":batch" cannot match them (no "/").
@router.post(
    ":batch",
    response_model=TaskBatchOut,
    summary="Create many tasks, each item on its own",
    description="Each item is the body of `POST /v1/tasks`. An invalid item (unknown "
    "template, context failing the schema, idempotency conflict...) gets its own `error` "
    "and stores nothing; the others are created. 422 only when the body itself is wrong "
    "(`tasks` not a list, more than 10,000 items).",
    operation_id="createTasks",
)
def create_tasks(body: TaskBatchCreate, tasker: TaskerDep, who: Writer) -> Any:
    results: dict[int, BatchItemResult] = {}
    requests: list[TaskRequest] = []
    positions: list[int] = []  # index in body.tasks of each request
    for index, item in enumerate(body.tasks):
        try:
            requests.append(task_request(TaskCreate.model_validate(item)))
        except BodyError as exc:
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'the item'}: {e['msg']}"
                for e in exc.errors()
            )
            results[index] = BatchItemResult(index, None, False, f"item {index}: {problem}")
        else:
            positions.append(index)
    for result in tasker.create_tasks(requests, actor=who.actor):
        results[positions[result.index]] = result.at(positions[result.index])
    ordered = [results[index] for index in range(len(body.tasks))]
    return {
        "results": [asdict(r) for r in ordered],
        "created": sum(r.created for r in ordered),
        "existing": sum(r.error is None and not r.created for r in ordered),
        "failed": sum(r.error is not None for r in ordered),
    }


def task_request(body: TaskCreate) -> TaskRequest:
    return TaskRequest(
        name=body.name,
        context=body.context,
        namespace=body.namespace,
        version=body.version,
        idempotency_key=body.idempotency_key,
        initiator=body.initiator,
        source_system=body.source_system,
        reason=body.reason,
        tags=tuple(body.tags),
        run_at=body.run_at,
        delay_seconds=body.delay_seconds,
        priority=body.priority,
    )


@router.get(
    "", response_model=TaskPage, summary="List tasks, newest first", operation_id="listTasks"
)
def list_tasks(
    tasker: TaskerDep,
    who: Reader,
    status: Annotated[Status | None, Query()] = None,
    namespace: Filter = None,
    name: Filter = None,
    limit: Annotated[int, Query(ge=1, le=200), DIGITS_ONLY] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page."),
    ] = None,
) -> Any:
    before_id = decode_cursor(cursor) if cursor is not None else None
    tasks = tasker.list_tasks(
        status=status, namespace=namespace, name=name, limit=limit + 1, before_id=before_id
    )
    more = len(tasks) > limit
    tasks = tasks[:limit]
    return {"tasks": tasks, "next_cursor": encode_cursor(tasks[-1]["id"]) if more else None}


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    summary="A task with its steps",
    responses=error_responses(404),
    operation_id="getTask",
)
def get_task(task_id: TaskId, tasker: TaskerDep, who: Reader) -> Any:
    return tasker.get_task(task_id)


TRANSITIONS_LIMIT = 1000  # the default page: a whole history for all but the largest tasks
NEXT_CURSOR_HEADER = "Tasker-Next-Cursor"


def encode_transition_cursor(entity: str, after: int) -> str:
    raw = json.dumps({"entity": entity, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_transition_cursor(cursor: str) -> tuple[str, int]:
    """The position a transitions cursor continues after; 422 for one this API never gave."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        entity, after = data["entity"], data["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        entity, after = None, None
    if (
        entity not in ("task", "step")
        or isinstance(after, bool)
        or not isinstance(after, int)
        or not 0 <= after <= MAX_ID
    ):
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned", [cursor])
    return entity, after


@router.get(
    "/{task_id}/transitions",
    response_model=list[TransitionOut],
    summary="The task's and its steps' full history, a page at a time",
    description="The task's own transitions (by `sort_key`), then its steps' (by `id`), "
    f"at most `limit` per page ({TRANSITIONS_LIMIT} unless given). When more follow, the "
    f"`{NEXT_CURSOR_HEADER}` header holds the `cursor` of the next page (and `Link` the "
    'URL, `rel="next"`); without it this page is the last. A task that is still running '
    "may record transitions behind a cursor: read again from the start to see them all.",
    responses={
        200: {
            "headers": {
                NEXT_CURSOR_HEADER: {
                    "description": "The `cursor` of the next page; absent on the last page.",
                    "schema": {"type": "string"},
                },
                "Link": {
                    "description": 'The next page\'s URL, `rel="next"` (RFC 8288).',
                    "schema": {"type": "string"},
                },
            }
        },
        **error_responses(404),
    },
    operation_id="listTaskTransitions",
)
def task_transitions(
    task_id: TaskId,
    tasker: TaskerDep,
    who: Reader,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=10_000), DIGITS_ONLY] = TRANSITIONS_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description=f"The `{NEXT_CURSOR_HEADER}` of the previous page."),
    ] = None,
) -> Any:
    after = decode_transition_cursor(cursor) if cursor is not None else None
    rows, following = tasker.transition_page(task_id, limit=limit, after=after)
    if following is not None:
        token = encode_transition_cursor(*following)
        response.headers[NEXT_CURSOR_HEADER] = token
        query = urlencode({"limit": limit, "cursor": token})
        response.headers["Link"] = f'</v1/tasks/{task_id}/transitions?{query}>; rel="next"'
    return rows


@router.get(
    "/{task_id}/readiness",
    response_model=list[ReadinessOut],
    summary="Readiness of each step, with the reason a step is blocked",
    responses=error_responses(404),
    operation_id="getTaskReadiness",
)
def task_readiness(task_id: TaskId, tasker: TaskerDep, who: Reader) -> Any:
    return [asdict(row) for row in tasker.readiness(task_id)]


@router.get(
    "/{task_id}/context",
    response_model=ExecutionContextOut,
    summary="The task's execution context",
    responses=error_responses(404),
    operation_id="getTaskContext",
)
def task_context(task_id: TaskId, tasker: TaskerDep, who: Reader) -> Any:
    return asdict(tasker.execution_context(task_id))


@router.get(
    "/{task_id}/dag",
    response_model=TaskDag,
    summary="Steps, edges and dependency levels",
    responses=error_responses(404),
    operation_id="getTaskDag",
)
def task_dag(task_id: TaskId, tasker: TaskerDep, who: Reader) -> Any:
    task = tasker.get_task(task_id)
    levels = tasker.dependency_levels(task_id)
    steps = [
        {
            "id": step["id"],
            "name": step["name"],
            "status": step["status"],
            "depends_on": step["depends_on"],
            "level": levels.get(step["id"], 0),
        }
        for step in task["steps"]
    ]
    return {
        "task_id": task_id,
        "steps": steps,
        "edges": [{"from": p, "to": s["name"]} for s in steps for p in s["depends_on"]],
        "levels": group_levels((s["name"], s["level"]) for s in steps),
    }


_ACTION_ERRORS = error_responses(404, 409)


@router.post(
    "/{task_id}/cancel",
    response_model=TaskOut,
    summary="Cancel a task (already cancelled: no change)",
    responses=_ACTION_ERRORS,
    operation_id="cancelTask",
)
def cancel_task(
    task_id: TaskId, tasker: TaskerDep, who: Writer, body: ActionRequest | None = None
) -> Any:
    tasker.cancel_task(task_id, actor=who.actor, reason=body.reason if body else None)
    return tasker.get_task(task_id)


@router.post(
    "/{task_id}/retry",
    response_model=TaskOut,
    summary="Re-open every failed step of a failed task",
    responses=_ACTION_ERRORS,
    operation_id="retryTask",
)
def retry_task(
    task_id: TaskId, tasker: TaskerDep, who: Writer, body: ActionRequest | None = None
) -> Any:
    tasker.retry_task(task_id, actor=who.actor, reason=body.reason if body else None)
    return tasker.get_task(task_id)


@router.post(
    "/{task_id}/steps/{step}/retry",
    response_model=TaskOut,
    summary="Re-open one failed step, its attempts reset",
    responses=_ACTION_ERRORS,
    operation_id="retryStep",
)
def retry_step(
    task_id: TaskId,
    step: StepName,
    tasker: TaskerDep,
    who: Writer,
    body: ActionRequest | None = None,
) -> Any:
    tasker.retry_step(task_id, step, actor=who.actor, reason=body.reason if body else None)
    return tasker.get_task(task_id)


@router.post(
    "/{task_id}/steps/{step}/resolve",
    response_model=TaskOut,
    summary="Declare a pending or failed step done by hand",
    responses=_ACTION_ERRORS,
    operation_id="resolveStep",
)
def resolve_step(
    task_id: TaskId, step: StepName, body: ResolveRequest, tasker: TaskerDep, who: Writer
) -> Any:
    tasker.resolve_step(
        task_id,
        step,
        reason=body.reason,
        results=body.results,
        actor=who.actor,
        branch=tuple(body.branch) if body.branch is not None else None,
    )
    return tasker.get_task(task_id)


SignalName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="The signal's name.")
]


@router.post(
    "/{task_id}/signals/{name}",
    response_model=SignalOut,
    status_code=201,
    summary="Deliver a signal to the step that waits for it (wait_for)",
    responses={
        200: {"model": SignalOut, "description": "The same signal had come before: no change"},
        **_ACTION_ERRORS,
    },
    operation_id="sendSignal",
)
def send_signal(
    task_id: TaskId,
    name: SignalName,
    tasker: TaskerDep,
    who: Writer,
    response: Response,
    payload: Annotated[AnyDocument, Body()] = None,
) -> Any:
    """The body is the payload, any JSON (none: null). A different payload for a signal
    already received is a 409; an unknown signal name a 404; a finished task a 409."""
    receipt = tasker.signal_task(task_id, name, payload, actor=who.actor)
    if not receipt.created:
        response.status_code = 200
    return SignalOut(
        task_id=receipt.task_id,
        signal=receipt.name,
        step=receipt.step,
        created=receipt.created,
        released=receipt.released,
        received_at=receipt.received_at,
    )
