"""Request and response bodies of the REST API (they are also its OpenAPI document).

Responses mirror the contract's task JSON (``tasker.serialization``) and the rows of the SQL
functions (``tasker.store.readiness``); FastAPI validates every response against them.
Strings that reach the database must be storable there: no NUL character (PostgreSQL text
and jsonb refuse it), no lone surrogate, no NaN or infinity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from tasker.clock import parse_utc
from tasker.definitions.template import MAX_PRIORITY, MIN_PRIORITY
from tasker.engine.creation import MAX_DELAY_SECONDS
from tasker.payloads import problems

Status = Literal["pending", "in_progress", "complete", "error", "cancelled", "resolved_manually"]
StepStatus = Literal[
    "pending", "in_progress", "complete", "error", "cancelled", "resolved_manually", "skipped"
]
BlockingReason = Literal[
    "dependencies_not_satisfied",
    "waiting_for_backoff",
    "retries_exhausted",
    "not_retryable",
    "in_progress",
    "finished",
    "cancelled",
    "skipped",
    "waiting_for_signal",
    "scheduled",
    "waiting_for_child",
    "concurrency_limit",
    "rate_limited",
    # Extension: ready, but no live worker serves the step's handler (tasker.engine.coverage).
    "no_worker_for_handler",
]
ExecutionStatus = Literal[
    "has_ready_steps",
    "processing",
    "blocked_by_failures",
    "all_complete",
    "waiting_for_dependencies",
    "waiting_for_retry",
    "cancelled",
]
RecommendedAction = Literal[
    "execute_ready_steps",
    "wait_for_completion",
    "handle_failures",
    "finalize_task",
    "wait_for_dependencies",
    "none",
]
HealthStatus = Literal["healthy", "recovering", "blocked", "unknown"]


def storable(value: Any) -> Any:
    """Return ``value`` unchanged, or raise ValueError naming every part no database can
    store (``tasker.payloads``: NUL, lone surrogate, NaN or infinity, too deep)."""
    found = problems(value)
    if found:
        raise ValueError("; ".join(found))
    return value


NO_NUL = r"^[^\x00]*$"  # documents in OpenAPI what storable() enforces
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(storable)]


def iso_time(value: Any) -> datetime:
    """An ISO 8601 time string as UTC (no zone: UTC), by the one parser of given times;
    numbers and other shapes are refused rather than read as Unix times."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time string such as 2026-01-31T14:00:00Z")
    try:
        return parse_utc(value)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{value[:100]!r} is not an ISO 8601 time such as 2026-01-31T14:00:00Z"
        ) from None


IsoTime = Annotated[datetime, BeforeValidator(iso_time)]
Document = Annotated[dict[str, Any], AfterValidator(storable)]
AnyDocument = Annotated[Any, AfterValidator(storable)]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- requests ----------------------------------------------------------------------------


class TaskCreate(BaseModel):
    """Create a task from the template ``namespace/name`` (highest version unless given)."""

    model_config = ConfigDict(extra="forbid")

    namespace: Text = Field("default", min_length=1, max_length=200)
    name: Text = Field(min_length=1, max_length=200)
    version: Text | None = Field(None, min_length=1, max_length=100)
    context: Document = Field(description="The task context, checked against context_schema.")
    idempotency_key: Text | None = Field(None, min_length=1, max_length=255)
    initiator: Text | None = Field(None, max_length=255)
    source_system: Text | None = Field(None, max_length=255)
    reason: Text | None = Field(None, max_length=2000)
    tags: list[Text] = Field(default_factory=list, max_length=100)
    run_at: IsoTime | None = Field(
        None, description="No step starts before this time (ISO 8601; no zone means UTC)."
    )
    delay_seconds: float | None = Field(
        None,
        ge=0,
        le=MAX_DELAY_SECONDS,
        allow_inf_nan=False,
        description="No step starts before this many seconds from now (not with run_at).",
    )
    priority: int | None = Field(
        None,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        strict=True,
        description="Higher is claimed first; default: the template's priority.",
    )


MAX_BATCH_TASKS = 10_000  # items per POST /v1/tasks:batch; a larger file goes in several


class TaskBatchCreate(BaseModel):
    """Create many tasks, each item on its own (a bad item does not stop the others)."""

    model_config = ConfigDict(extra="forbid")

    # Items are checked one by one in the route: an invalid one is that item's error, not a
    # 422 of the whole batch, so the document accepts any item (it would lie otherwise).
    tasks: list[Any] = Field(
        max_length=MAX_BATCH_TASKS,
        description=f"Up to {MAX_BATCH_TASKS:,} items, each a body of POST /v1/tasks "
        "(TaskCreate); an item that is not one gets its own error in the results.",
    )


class ActionRequest(BaseModel):
    """Optional body of cancel and retry: why (recorded in the transition history)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(None, max_length=2000)


class ResolveRequest(BaseModel):
    """Declare a step done by hand; ``results`` become its results for dependent steps."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)
    results: AnyDocument = None
    branch: list[Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]] | None = (
        Field(
            default=None,
            description="For a step with branches: the children to run; the others are skipped.",
        )
    )


class SignalOut(BaseModel):
    """A delivered signal. ``created`` false: the same signal had come before (200)."""

    task_id: int
    signal: str
    step: str
    created: bool
    released: bool
    received_at: datetime


# -- tasks -------------------------------------------------------------------------------


class StepOut(BaseModel):
    id: int
    name: str
    status: StepStatus
    depends_on: list[str]
    attempts: int
    max_attempts: int
    retryable: bool
    results: Any = None
    error: dict[str, Any] | None = None
    next_retry_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    join: Literal["all", "any"] = "all"
    branches: list[str] = Field(default_factory=list)
    wait_for: str | None = None
    map: str | None = None
    index: int | None = None
    group: str | None = None
    instances: dict[str, int] | None = None
    # Child workflows: the template the step runs as a child task, and that task.
    workflow: dict[str, Any] | None = None
    child_task_id: int | None = None


class TaskSummary(BaseModel):
    id: int
    namespace: str
    name: str
    version: str
    status: Status
    context: dict[str, Any]
    idempotency_key: str | None = None
    initiator: str | None = None
    source_system: str | None = None
    reason: str | None = None
    tags: list[str]
    created_at: datetime
    completed_at: datetime | None = None
    run_at: datetime | None = None
    priority: int = 0
    # A child task: the task and the step that started it.
    parent_task_id: int | None = None
    parent_step_id: int | None = None


class TaskOut(TaskSummary):
    steps: list[StepOut]


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class BatchItemOut(BaseModel):
    index: int = Field(description="The item's position in `tasks`, from 0.")
    task_id: int | None = Field(description="The task made (or found by its key); null on error.")
    created: bool = Field(description="False when the idempotency key had made it already.")
    error: str | None = Field(description="What was wrong with the item, naming it.")


class TaskBatchOut(BaseModel):
    results: list[BatchItemOut]
    created: int = Field(description="Items that made a new task.")
    existing: int = Field(description="Items whose idempotency key had made their task already.")
    failed: int = Field(description="Items with an error (nothing was stored for them).")


class TransitionOut(BaseModel):
    id: int
    entity: Literal["task", "step"]
    step_id: int | None = None
    step_name: str | None = None
    from_state: StepStatus | None = None
    to_state: StepStatus
    reason: str | None = None
    metadata: dict[str, Any] | None = None
    actor: str | None = None
    sort_key: int
    created_at: datetime


class ReadinessOut(BaseModel):
    workflow_step_id: int
    task_id: int
    name: str
    current_state: StepStatus
    dependencies_satisfied: bool
    retry_eligible: bool
    ready_for_execution: bool
    total_parents: int
    completed_parents: int
    attempts: int
    max_attempts: int
    next_retry_at: datetime | None = None
    last_attempted_at: datetime | None = None
    blocking_reason: BlockingReason | None = None


class ExecutionContextOut(BaseModel):
    task_id: int
    status: Status
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: ExecutionStatus
    recommended_action: RecommendedAction
    completion_percentage: float
    health_status: HealthStatus


class DagStep(BaseModel):
    id: int
    name: str
    status: Status
    depends_on: list[str]
    level: int


class DagEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_step: str = Field(alias="from")
    to_step: str = Field(alias="to")


class TaskDag(BaseModel):
    task_id: int
    steps: list[DagStep]
    edges: list[DagEdge]
    levels: list[list[str]] = Field(description="Step names by dependency level, roots first.")


# -- templates ---------------------------------------------------------------------------


class TemplateSummary(BaseModel):
    namespace: str
    name: str
    version: str
    description: str | None = None
    steps: int


class BackoffOut(BaseModel):
    base_seconds: float
    max_seconds: float
    jitter: float


class TemplateStep(BaseModel):
    name: str
    handler: str
    depends_on: list[str]
    description: str | None = None
    config: dict[str, Any]
    max_attempts: int
    retryable: bool
    timeout_seconds: float | None = None
    backoff: BackoffOut
    level: int


class TemplateDagOut(BaseModel):
    edges: list[DagEdge]
    levels: list[list[str]]
    topological_order: list[str]


class TemplateDetail(BaseModel):
    namespace: str
    name: str
    version: str
    versions: list[str]
    description: str | None = None
    context_schema: dict[str, Any] | None = None
    priority: int = 0
    steps: list[TemplateStep]
    dag: TemplateDagOut


# -- health, metrics, analytics ----------------------------------------------------------


class LiveOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    database: str
    schema_version: int


class HealthCounts(BaseModel):
    total_tasks: int
    pending_tasks: int
    in_progress_tasks: int
    complete_tasks: int
    error_tasks: int
    cancelled_tasks: int
    resolved_manually_tasks: int
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    complete_steps: int
    error_steps: int
    retrying_steps: int
    exhausted_steps: int
    claimable_steps: int
    expired_leases: int
    active_workers: int


class WorkerOut(BaseModel):
    id: str
    hostname: str
    pid: int
    namespaces: list[str]
    concurrency: int
    started_at: datetime
    last_heartbeat_at: datetime
    stopped_at: datetime | None = None
    held_steps: int
    abandoned_threads: int = Field(
        0,
        description="Handler threads given up at their step's timeout that have not "
        "returned yet (at its last heartbeat).",
    )
    lease_seconds: float = Field(
        description="Its lease: the one it registered with, else TASKER_LEASE_SECONDS."
    )
    state: Literal["active", "stale", "stopped"] = Field(
        description="active: its last heartbeat is within its lease; stale: not stopped,"
        " yet silent for longer (killed, hung or cut off); stopped: it stopped cleanly."
    )


class StatusOut(BaseModel):
    status: Literal["healthy", "degraded"] = Field(
        description="degraded when a step's lease has expired or a worker shown is stale."
    )
    database: str
    checked_at: datetime
    counts: HealthCounts
    workers: list[WorkerOut]


class PerformanceOut(BaseModel):
    analysis_period_start: datetime
    calculated_at: datetime
    active_tasks_count: int
    total_namespaces_count: int
    unique_task_types_count: int
    tasks_created: int
    tasks_completed: int
    tasks_failed: int
    steps_completed: int
    steps_failed: int
    completion_rate: float
    error_rate: float
    avg_task_duration_seconds: float
    avg_step_duration_seconds: float
    task_throughput_per_minute: float
    step_throughput_per_minute: float


class SlowStepOut(BaseModel):
    workflow_step_id: int
    task_id: int
    namespace: str
    task_name: str
    version: str
    step_name: str
    status: Status
    attempts: int
    duration_seconds: float
    completed_at: datetime


class SlowTaskOut(BaseModel):
    task_id: int
    namespace: str
    name: str
    version: str
    status: Status
    total_steps: int
    duration_seconds: float
    created_at: datetime
    completed_at: datetime


class BottlenecksOut(BaseModel):
    since: datetime
    slowest_steps: list[SlowStepOut]
    slowest_tasks: list[SlowTaskOut]


class TimelineBucketOut(BaseModel):
    start: datetime
    completed: int
    failed: int
    error_rate: float
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None


class TimelineOut(BaseModel):
    since: datetime
    bucket_seconds: int
    buckets: list[TimelineBucketOut]
