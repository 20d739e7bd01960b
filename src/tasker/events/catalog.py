"""Every event Tasker publishes, with its payload: the source of ``docs/events.md``.

State events (``task.*``, ``step.*``) are written exactly once per state change, in
the transaction of the change; ``workflow.*`` events mark orchestration moments.
Custom events from handlers (``step.publish``) use any other dotted namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTITY = ("namespace", "name", "version")
CHANGE = ("from_state", "to_state")
# Present when given: who made a change (a worker id, ``reaper``, ``token:NAME``, the
# CLI's user) and why (an operator's reason, ``lease expired``).
ACTOR = ("actor",)
ACTION = ("reason", "actor")


@dataclass(frozen=True)
class EventSpec:
    """One event: its name, when it is published, the payload keys every instance
    carries, and the ``optional`` keys that appear only when they apply."""

    name: str
    when: str
    payload: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key an instance may carry."""
        return (*self.payload, *self.optional)


CATALOG: tuple[EventSpec, ...] = (
    EventSpec(
        "task.started",
        "a task's first step is claimed (pending -> in_progress)",
        (*IDENTITY, *CHANGE),
        ACTOR,
    ),
    EventSpec(
        "task.completed",
        "every step is complete or resolved_manually",
        (*IDENTITY, *CHANGE, "duration_seconds"),
        ACTOR,
    ),
    EventSpec(
        "task.failed",
        "a step failed for good and nothing else can run",
        (*IDENTITY, *CHANGE, "duration_seconds"),
        ACTOR,
    ),
    EventSpec("task.cancelled", "an operator cancelled the task", CHANGE, ACTION),
    EventSpec(
        "task.retry_requested",
        "a failed task runs again (operator retry, or a step resolved by hand)",
        CHANGE,
        ACTION,
    ),
    EventSpec(
        "task.resolved_manually",
        "the last open steps of a failed task were resolved by hand",
        (*IDENTITY, *CHANGE, "duration_seconds"),
        ACTOR,
    ),
    EventSpec(
        "step.started",
        "a worker claimed the step for an attempt; a map group starts when it expands "
        "(`instances`, `reason` `map group`)",
        ("attempt", "max_attempts", "worker_id", "queued_seconds", *CHANGE),
        ("instances", *ACTION),
    ),
    EventSpec(
        "step.completed",
        "the handler returned; results stored (`branches_taken`: the children a branching "
        "step chose). A step with `wait_for` and no handler completes when its signal "
        "comes, with `reason` `signal received` and no handler timings",
        ("attempt", "max_attempts", *CHANGE),
        (
            "duration_seconds",
            "queued_to_finished_seconds",
            "results_size",
            *IDENTITY,
            "branches_taken",
            *ACTION,
        ),
    ),
    EventSpec(
        "step.skipped",
        "the step will not run: a branch not taken (`reason` `branch not taken`), or its "
        "`join` rule (a parent was skipped; for `join: any`, every parent was)",
        CHANGE,
        ACTION,
    ),
    EventSpec(
        "step.signal_received",
        "a signal the step waits for (`wait_for`) was delivered; `step_status` is the "
        "step's state when it came (a signal that comes early is kept)",
        ("signal", "payload_size", "step_status"),
        ACTOR,
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
        ACTION,
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
        ACTION,
    ),
    EventSpec(
        "step.cancelled",
        "the task was cancelled; a step running then is cancelled when it reports, its "
        "result discarded (`discarded`, with its duration and the task's identity)",
        ("attempt", "max_attempts", *CHANGE),
        ("discarded", "duration_seconds", *IDENTITY, *ACTION),
    ),
    EventSpec(
        "step.resolved_manually",
        "an operator declared the step done",
        ("attempt", "max_attempts", *CHANGE),
        ACTION,
    ),
    EventSpec(
        "step.retry_requested",
        "an operator re-opened a failed step (attempts reset)",
        ("attempt", "max_attempts", *CHANGE),
        ACTION,
    ),
    EventSpec(
        "workflow.task_created",
        "a task and all its steps were created (run_at: when a delayed task may start; "
        "priority: when not 0); a child task names the task and step that started it",
        (*IDENTITY, "total_steps"),
        ("run_at", "priority", "parent_task_id", "parent_step_id"),
    ),
    EventSpec(
        "workflow.child_task_created",
        "a step with `workflow` started its child task; the step waits for it "
        "(`blocking_reason` `waiting_for_child`) and completes with its results",
        ("child_task_id",),
    ),
    EventSpec(
        "workflow.steps_ready",
        "steps became claimable (roots, with the task's identity, or children whose "
        "parents are all done)",
        ("steps",),
        IDENTITY,
    ),
    EventSpec("workflow.task_finalized", "the task reached a final state", ("status",)),
    EventSpec(
        "schedule.fired",
        "a schedule's tick created its task (the event's task_id; `tick`: the tick's time)",
        ("namespace", "name", "schedule", "tick"),
    ),
    EventSpec(
        "schedule.paused",
        "an operator paused a schedule (no task_id)",
        ("namespace", "name", "schedule"),
        ACTION,
    ),
    EventSpec(
        "schedule.resumed",
        "an operator resumed a schedule; it fires from its next tick (no task_id)",
        ("namespace", "name", "schedule"),
        ACTION,
    ),
    EventSpec(
        "workflow.map_expanded",
        "a map group's parents are done: its `instances` were created, one per item",
        ("instances",),
    ),
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
        "`created_at` and `payload`. Every instance carries the payload keys listed below,",
        "and the optional ones only when they apply: `actor` is who made the change (a",
        "worker id, `reaper`, `token:NAME`), `reason` an operator's reason or `lease",
        "expired`. Results themselves are never copied into events (they can be large):",
        "`results_size` gives their size in bytes of JSON.",
        "",
        'Handlers publish custom events with `step.publish("order.shipped", {...})`:',
        "dotted lower-case names outside the reserved namespaces `task`, `step` and",
        "`workflow`, stored with the step's result, so they exist only if it completed.",
        "",
        "| event | when | payload | optional |",
        "|---|---|---|---|",
    ]
    for spec in CATALOG:
        payload, optional = (_code_list(keys) for keys in (spec.payload, spec.optional))
        lines.append(f"| `{spec.name}` | {spec.when} | {payload} | {optional} |")
    return "\n".join(lines) + "\n"


def _code_list(keys: tuple[str, ...]) -> str:
    return ", ".join(f"`{key}`" for key in keys)
