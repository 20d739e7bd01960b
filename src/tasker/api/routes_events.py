"""``/v1/events``: the durable event log, as pages and as a Server-Sent Events stream.

The cursor is an event id. Ids follow commit order on both backends (see
docs/architecture.md, Events), so "every event after id N" never skips one that commits
later: a client that keeps the last id it saw and asks again misses nothing.

The stream polls the log through the facade every ``POLL_SECONDS`` and sends a comment
line when it has been quiet for ``KEEPALIVE_SECONDS`` (proxies close silent
connections). Each stream ends after ``STREAM_SECONDS``: uvicorn waits for open
responses when it shuts down, and a browser's ``EventSource`` reconnects by itself with
``Last-Event-ID``, so ending a stream costs one request and loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tasker.api.deps import COMMON_ERRORS, DIGITS_ONLY, Filter, TaskerDep
from tasker.api.errors import ApiError
from tasker.api.security import Reader
from tasker.facade import Tasker

MAX_ID = 2**63 - 1
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 30.0
STREAM_BATCH = 500  # events read per poll; more wait for the next poll, none are lost

router = APIRouter(prefix="/v1/events", tags=["events"], responses=COMMON_ERRORS)

After = Annotated[
    int,
    Query(ge=0, le=MAX_ID, description="The cursor: only events with a larger id."),
    DIGITS_ONLY,
]
TaskFilter = Annotated[int | None, Query(ge=1, le=MAX_ID), DIGITS_ONLY]
Limit = Annotated[int, Query(ge=1, le=1000), DIGITS_ONLY]


class EventOut(BaseModel):
    id: int
    name: str
    task_id: int | None = None
    step_id: int | None = None
    step_name: str | None = None
    created_at: str
    payload: dict[str, Any] | None = None


class EventPage(BaseModel):
    events: list[EventOut]
    next: int = Field(
        description="Pass as `after` for the next page: the last id returned, else the "
        "`after` given (nothing newer yet: ask again later with the same cursor)."
    )


@router.get(
    "",
    response_model=EventPage,
    summary="Events after a cursor, oldest first",
    operation_id="listEvents",
)
def list_events(
    tasker: TaskerDep,
    who: Reader,
    after: After = 0,
    task_id: TaskFilter = None,
    name: Filter = None,
    limit: Limit = 100,
) -> Any:
    events = tasker.event_page(after, task_id=task_id, name=name, limit=limit)
    return {"events": events, "next": events[-1]["id"] if events else after}


@router.get(
    "/stream",
    summary="Events as Server-Sent Events (resumes from Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    operation_id="streamEvents",
)
async def stream_events(
    request: Request,
    tasker: TaskerDep,
    who: Reader,
    after: After = 0,
    task_id: TaskFilter = None,
    name: Filter = None,
    last_event_id: Annotated[
        str | None,
        Header(description="Sent by a reconnecting EventSource; wins over `after`."),
    ] = None,
) -> StreamingResponse:
    cursor = resume_cursor(last_event_id, after)
    return StreamingResponse(
        event_stream(request, tasker, cursor, task_id, name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def resume_cursor(last_event_id: str | None, after: int) -> int:
    if last_event_id is None or last_event_id.strip() == "":
        return after
    text = last_event_id.strip()
    if not text.isdigit() or int(text) > MAX_ID:
        raise ApiError(422, "invalid_cursor", "Last-Event-ID is not an event id", [text])
    return int(text)


def sse_message(event: dict[str, Any]) -> str:
    """One SSE message: the event's id (the cursor) and its JSON on one data line."""
    return f"id: {event['id']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


async def event_stream(
    request: Request, tasker: Tasker, cursor: int, task_id: int | None, name: str | None
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"  # reconnect after a second when the stream ends or breaks
    started = last_sent = time.monotonic()
    while time.monotonic() - started < STREAM_SECONDS:
        if await request.is_disconnected():
            return
        events = await run_in_threadpool(
            tasker.event_page, cursor, task_id=task_id, name=name, limit=STREAM_BATCH
        )
        for event in events:
            yield sse_message(event)
            cursor = event["id"]
        now = time.monotonic()
        if events:
            last_sent = now
        elif now - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = now
        if len(events) < STREAM_BATCH:
            await asyncio.sleep(POLL_SECONDS)
