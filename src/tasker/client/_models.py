"""What the client returns: the REST API's JSON as frozen dataclasses.

Each type mirrors one response of DESIGN.md's REST API (the task as JSON, its steps,
transitions, events, the DAG, a signal receipt, the health status). Times are
timezone-aware UTC ``datetime``; lists are tuples. Readiness, the execution context and
the health counts reuse the store's own dataclasses (``tasker.store.readiness``), so a
row reads the same from the local facade and over HTTP.

Every type built from an object keeps that object in ``data`` (not compared, not in the
repr): a field a newer server adds is there before this client names it. Fields this
client names but an older server does not send take their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from tasker.clock import parse_utc
from tasker.states import SETTLED
from tasker.store.readiness import StepReadiness, SystemHealthCounts, TaskExecutionContext

__all__ = [
    "DagStep",
    "Event",
    "EventPage",
    "Health",
    "SignalReceipt",
    "Step",
    "Task",
    "TaskDag",
    "TaskPage",
    "Transition",
    "TransitionPage",
    "execution_context_from_json",
    "readiness_from_json",
]

T = TypeVar("T")


def _time(value: Any) -> datetime | None:
    return parse_utc(value) if isinstance(value, str) else None


def _required_time(value: Any) -> datetime:
    return parse_utc(str(value))


@dataclass(frozen=True)
class Step:
    """A step of a task (``steps[]`` of the task JSON)."""

    id: int
    name: str
    status: str
    depends_on: tuple[str, ...]
    attempts: int
    max_attempts: int
    retryable: bool
    results: Any = None
    error: dict[str, Any] | None = None
    next_retry_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    join: str = "all"
    branches: tuple[str, ...] = ()
    wait_for: str | None = None
    map: str | None = None
    index: int | None = None
    group: str | None = None
    instances: dict[str, int] | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(
            id=data["id"],
            name=data["name"],
            status=data["status"],
            depends_on=tuple(data.get("depends_on") or ()),
            attempts=data["attempts"],
            max_attempts=data["max_attempts"],
            retryable=data["retryable"],
            results=data.get("results"),
            error=data.get("error"),
            next_retry_at=_time(data.get("next_retry_at")),
            started_at=_time(data.get("started_at")),
            completed_at=_time(data.get("completed_at")),
            join=data.get("join") or "all",
            branches=tuple(data.get("branches") or ()),
            wait_for=data.get("wait_for"),
            map=data.get("map"),
            index=data.get("index"),
            group=data.get("group"),
            instances=data.get("instances"),
            data=data,
        )


@dataclass(frozen=True)
class Task:
    """A task (the task JSON). ``steps`` is None where the API leaves them out (lists)."""

    id: int
    namespace: str
    name: str
    version: str
    status: str
    context: dict[str, Any]
    created_at: datetime
    idempotency_key: str | None = None
    initiator: str | None = None
    source_system: str | None = None
    reason: str | None = None
    tags: tuple[str, ...] = ()
    completed_at: datetime | None = None
    steps: tuple[Step, ...] | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        steps = data.get("steps")
        return cls(
            id=data["id"],
            namespace=data["namespace"],
            name=data["name"],
            version=data["version"],
            status=data["status"],
            context=data.get("context") or {},
            created_at=_required_time(data["created_at"]),
            idempotency_key=data.get("idempotency_key"),
            initiator=data.get("initiator"),
            source_system=data.get("source_system"),
            reason=data.get("reason"),
            tags=tuple(data.get("tags") or ()),
            completed_at=_time(data.get("completed_at")),
            steps=None if steps is None else tuple(Step.from_json(s) for s in steps),
            data=data,
        )

    @property
    def settled(self) -> bool:
        """Nothing more happens without a person: ``complete``, ``error``, ``cancelled`` or
        ``resolved_manually`` (what ``wait`` and ``tasker task create --wait`` wait for)."""
        return self.status in SETTLED

    def step(self, name: str) -> Step:
        """The step named ``name``; KeyError when the task has none (or no steps loaded)."""
        for step in self.steps or ():
            if step.name == name:
                return step
        raise KeyError(name)


@dataclass(frozen=True)
class TaskPage:
    """One page of ``GET /v1/tasks``, newest first; ``next_cursor`` None on the last."""

    tasks: tuple[Task, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class BatchItem:
    """One item of ``POST /v1/tasks:batch``: its task (``created`` False when its
    idempotency key had made it already), or ``error`` naming the item and the problem."""

    index: int
    task_id: int | None
    created: bool
    error: str | None


@dataclass(frozen=True)
class TaskBatch:
    """What ``create_tasks`` did: one result per item, in order, and the counts."""

    results: tuple[BatchItem, ...]
    created: int
    existing: int
    failed: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskBatch:
        return cls(
            results=tuple(_known(BatchItem, item) for item in data["results"]),
            created=data["created"],
            existing=data["existing"],
            failed=data["failed"],
        )


@dataclass(frozen=True)
class Transition:
    """One row of a task's history: the task's own (``entity`` ``task``) or a step's."""

    id: int
    entity: str
    to_state: str
    sort_key: int
    created_at: datetime
    from_state: str | None = None
    step_id: int | None = None
    step_name: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transition:
        return cls(
            id=data["id"],
            entity=data["entity"],
            to_state=data["to_state"],
            sort_key=data["sort_key"],
            created_at=_required_time(data["created_at"]),
            from_state=data.get("from_state"),
            step_id=data.get("step_id"),
            step_name=data.get("step_name"),
            reason=data.get("reason"),
            metadata=data.get("metadata"),
            actor=data.get("actor"),
            data=data,
        )


@dataclass(frozen=True)
class TransitionPage:
    """One page of a task's history; ``next_cursor`` None on the last."""

    transitions: tuple[Transition, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Event:
    """An event of the durable log (``step_id``/``step_name`` None for task events)."""

    id: int
    name: str
    created_at: datetime
    task_id: int | None = None
    step_id: int | None = None
    step_name: str | None = None
    payload: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls(
            id=data["id"],
            name=data["name"],
            created_at=_required_time(data["created_at"]),
            task_id=data.get("task_id"),
            step_id=data.get("step_id"),
            step_name=data.get("step_name"),
            payload=data.get("payload"),
            data=data,
        )


@dataclass(frozen=True)
class EventPage:
    """Events after a cursor, oldest first. ``next``: the ``after`` of the next page (the
    last id returned, else the ``after`` given: nothing newer yet)."""

    events: tuple[Event, ...]
    next: int


@dataclass(frozen=True)
class SignalReceipt:
    """A delivered signal. ``created`` False: the same signal had come before."""

    task_id: int
    signal: str
    step: str
    created: bool
    released: bool
    received_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignalReceipt:
        return cls(
            task_id=data["task_id"],
            signal=data["signal"],
            step=data["step"],
            created=data["created"],
            released=data["released"],
            received_at=_required_time(data["received_at"]),
        )


@dataclass(frozen=True)
class DagStep:
    id: int
    name: str
    status: str
    depends_on: tuple[str, ...]
    level: int


@dataclass(frozen=True)
class TaskDag:
    """A task's steps, its edges as ``(parent, child)`` names, and the step names by
    dependency level, roots first."""

    task_id: int
    steps: tuple[DagStep, ...]
    edges: tuple[tuple[str, str], ...]
    levels: tuple[tuple[str, ...], ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskDag:
        return cls(
            task_id=data["task_id"],
            steps=tuple(
                DagStep(s["id"], s["name"], s["status"], tuple(s["depends_on"]), s["level"])
                for s in data["steps"]
            ),
            edges=tuple((e["from"], e["to"]) for e in data["edges"]),
            levels=tuple(tuple(level) for level in data["levels"]),
        )


@dataclass(frozen=True)
class Health:
    """``GET /health/status``: ``healthy`` or ``degraded``, the counts, the workers (as
    the API's JSON objects)."""

    status: str
    database: str
    checked_at: datetime
    counts: SystemHealthCounts
    workers: tuple[dict[str, Any], ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        return cls(
            status=data["status"],
            database=data["database"],
            checked_at=_required_time(data["checked_at"]),
            counts=_known(SystemHealthCounts, data["counts"]),
            workers=tuple(data.get("workers") or ()),
        )


def _known(cls: type[T], data: dict[str, Any], times: tuple[str, ...] = ()) -> T:
    """``cls`` from the keys of ``data`` it has fields for (a newer server's extra keys are
    left out), the ``times`` among them parsed."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: (_time(v) if k in times else v) for k, v in data.items() if k in names}
    return cls(**values)


def readiness_from_json(data: dict[str, Any]) -> StepReadiness:
    return _known(StepReadiness, data, ("next_retry_at", "last_attempted_at"))


def execution_context_from_json(data: dict[str, Any]) -> TaskExecutionContext:
    return _known(TaskExecutionContext, data)
