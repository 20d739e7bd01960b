"""``/v1/schedules``: the cron schedules templates declare; pause and resume them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from tasker.api.deps import COMMON_ERRORS, TaskerDep, error_responses
from tasker.api.schemas import NO_NUL, ActionRequest
from tasker.api.security import Principal, Reader, Writer
from tasker.facade import Tasker

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], responses=COMMON_ERRORS)

Name = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]


class ScheduleOut(BaseModel):
    namespace: str
    template: str
    name: str
    cron: str
    timezone: str
    catchup: Literal["none", "latest", "all"]
    context: dict[str, Any]
    paused: bool
    paused_at: datetime | None = None
    paused_by: str | None = None
    pause_reason: str | None = None
    next_fire_at: datetime | None = Field(description="Null while paused.")
    last_fired_at: datetime | None = None
    last_tick: datetime | None = None
    last_task_id: int | None = None


@router.get("", response_model=list[ScheduleOut], summary="Every schedule and its next fire time")
def list_schedules(tasker: TaskerDep, who: Reader) -> Any:
    return tasker.schedules()


def _change(
    tasker: Tasker,
    who: Principal,
    where: tuple[str, str, str],
    paused: bool,
    body: ActionRequest | None,
) -> Any:
    namespace, name, schedule = where
    return tasker.set_schedule_paused(
        namespace,
        name,
        schedule,
        paused=paused,
        actor=who.actor,
        reason=body.reason if body else None,
    )


@router.post(
    "/{namespace}/{name}/{schedule}/pause",
    response_model=ScheduleOut,
    summary="Stop firing a schedule until it is resumed",
    responses=error_responses(404),
)
def pause(
    namespace: Name,
    name: Name,
    schedule: Name,
    tasker: TaskerDep,
    who: Writer,
    body: ActionRequest | None = None,
) -> Any:
    return _change(tasker, who, (namespace, name, schedule), True, body)


@router.post(
    "/{namespace}/{name}/{schedule}/resume",
    response_model=ScheduleOut,
    summary="Fire a paused schedule again, from its next tick",
    responses=error_responses(404),
)
def resume(
    namespace: Name,
    name: Name,
    schedule: Name,
    tasker: TaskerDep,
    who: Writer,
    body: ActionRequest | None = None,
) -> Any:
    return _change(tasker, who, (namespace, name, schedule), False, body)
