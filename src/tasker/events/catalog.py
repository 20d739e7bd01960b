"""Every event Tasker publishes, with its payload: the source of ``docs/events.md``.

State events (``task.*``, ``step.*``) are written exactly once per state change, in
the transaction of the change; ``workflow.*`` events mark orchestration moments.
Custom events from handlers (``step.publish``) use any other dotted namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTITY = ("namespace", "name", "version")
CHANGE = ("from_state", "to_state")
ACTION = ("reason", "actor")


@dataclass(frozen=True)
class EventSpec:
    name: str
    when: str
    payload: tuple[str, ...]


CATALOG: tuple[EventSpec, ...] = (
    EventSpec(
        "task.started",
        "a task's first step is claimed (pending -> in_progress)",
        (*IDENTITY, *CHANGE),
    ),
    EventSpec(
        "task.completed",
        "every step is complete or resolved_manually",
        (*IDENTITY, *CHANGE, "duration_seconds"),
    ),
    EventSpec(
        "task.failed",
        "a step failed for good and nothing else can run",
        (*IDENTITY, *CHANGE, "duration_seconds"),
    ),
    EventSpec("task.cancelled", "an operator cancelled the task", (*CHANGE, *ACTION)),
    EventSpec(
        "task.retry_requested",
        "a failed task runs again (operator retry, or a step resolved by hand)",
        (*CHANGE, *ACTION),
    ),
    EventSpec(
        "task.resolved_manually",
        "the last open steps of a failed task were resolved by hand",
        (*IDENTITY, *CHANGE, "duration_seconds"),
    ),
    EventSpec(
        "step.started",
        "a worker claimed the step for an attempt",
        ("attempt", "max_attempts", "worker_id", "queued_seconds", *CHANGE),
    ),
    EventSpec(
        "step.completed",
        "the handler returned; results stored",
        (
            "attempt",
            "max_attempts",
            "duration_seconds",
            "queued_to_finished_seconds",
            "results_size",
            *IDENTITY,
            *CHANGE,
        ),
    ),
    EventSpec(
        "step.retry_scheduled",
        "an attempt failed and another will follow",
        (
            "attempt",
            "max_attempts",
            "duration_seconds",
            "error_class",
            "error_message",
            "next_retry_at",
            *IDENTITY,
            *CHANGE,
        ),
    ),
    EventSpec(
        "step.failed",
        "an attempt failed and no other will follow",
        (
            "attempt",
            "max_attempts",
            "duration_seconds",
            "error_class",
            "error_message",
            "next_retry_at",
            *IDENTITY,
            *CHANGE,
        ),
    ),
    EventSpec(
        "step.cancelled",
        "the task was cancelled (a running step's result is discarded)",
        ("attempt", "max_attempts", *CHANGE, *ACTION),
    ),
    EventSpec(
        "step.resolved_manually",
        "an operator declared the step done",
        ("attempt", "max_attempts", *CHANGE, *ACTION),
    ),
    EventSpec(
        "step.retry_requested",
        "an operator re-opened a failed step (attempts reset)",
        ("attempt", "max_attempts", *CHANGE, *ACTION),
    ),
    EventSpec(
        "workflow.task_created", "a task and all its steps were created", (*IDENTITY, "total_steps")
    ),
    EventSpec(
        "workflow.steps_ready",
        "steps became claimable (roots, or children whose parents are all done)",
        ("steps",),
    ),
    EventSpec("workflow.task_finalized", "the task reached a final state", ("status",)),
    EventSpec(
        "workflow.step_lease_expired",
        "a worker stopped heartbeating; the attempt counts as failed",
        ("attempt",),
    ),
)

BY_NAME = {spec.name: spec for spec in CATALOG}
STATE_EVENT_PREFIXES = ("task.", "step.")


def render_markdown() -> str:
    """``docs/events.md`` as generated from :data:`CATALOG`."""
    lines = [
        "# Events",
        "",
        "Generated from `src/tasker/events/catalog.py` (a test keeps the two equal).",
        "",
        "Every state change publishes exactly one `task.*` or `step.*` event, written to the",
        "event log in the transaction of the change. `workflow.*` events mark orchestration",
        "moments. Every event carries `id`, `name`, `task_id`, `step_id`, `step_name`,",
        "`created_at` and `payload`; the payload keys are listed below. Results themselves",
        "are never copied into events (they can be large): `results_size` gives their size",
        "in bytes of JSON.",
        "",
        'Handlers publish custom events with `step.publish("order.shipped", {...})`:',
        "dotted lower-case names outside the reserved namespaces `task`, `step` and",
        "`workflow`, stored with the step's result, so they exist only if it completed.",
        "",
        "| event | when | payload |",
        "|---|---|---|",
    ]
    for spec in CATALOG:
        payload = ", ".join(f"`{key}`" for key in spec.payload)
        lines.append(f"| `{spec.name}` | {spec.when} | {payload} |")
    return "\n".join(lines) + "\n"
