"""``tasker task``: create, list, show, cancel and retry tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from tasker.cli import common
from tasker.cli.render import (
    dag_tree,
    error_summary,
    result_preview,
    start_line,
    state_text,
    table,
    when,
)
from tasker.cli.waiting import unserved_hint, wait_for_final
from tasker.clock import parse_utc
from tasker.definitions.template import MAX_PRIORITY, MIN_PRIORITY
from tasker.engine.coverage import NO_WORKER_FOR_HANDLER
from tasker.engine.creation import TaskRequest
from tasker.engine.flow import describe as describe_wait
from tasker.engine.retention import DEFAULT_PACE
from tasker.exceptions import TemplateNotFound, ValidationError
from tasker.facade import Tasker
from tasker.states import State
from tasker.store.readiness import StepReadiness

SHOWN_INSTANCES = 10  # map instances drawn under their group by `task show`

app = typer.Typer(name="task", help="Create, inspect and recover tasks.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the contract's JSON.")]
ReasonOption = Annotated[str | None, typer.Option(help="Why; stored in the transition history.")]


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Template name (not with --from-file).", show_default=False)
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="Create one task per line of this JSON lines file (- for stdin); each line "
            "an object like the body of POST /v1/tasks.",
            show_default=False,
        ),
    ] = None,
    context: common.ContextOption = None,
    context_file: common.ContextFileOption = None,
    namespace: common.NamespaceOption = "default",
    version: common.VersionOption = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="The same key and request return the existing task."),
    ] = None,
    initiator: Annotated[str | None, typer.Option(help="Who asked for the task.")] = None,
    source_system: Annotated[
        str | None, typer.Option(help="Which system asked for the task.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why the task was created.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    run_at: Annotated[
        str | None,
        typer.Option(
            "--run-at",
            help="Start no step before this ISO 8601 time (no zone: UTC), e.g. "
            "2026-01-31T14:00:00Z.",
            show_default=False,
        ),
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option(
            help="Start no step before this long from now: 30s, 10m, 2h, 1d.", show_default=False
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            min=MIN_PRIORITY,
            max=MAX_PRIORITY,
            help="Higher is claimed first (default: the template's priority).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait until the task is final (needs a running `tasker worker`)."
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=common.MAX_DURATION_SECONDS,
            help="With --wait: give up after SECONDS (exit 4).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a task and print its id. Exit 2 on an invalid context or an idempotency
    conflict; with --wait, exit 0 when the task completes, 1 when it fails, and 4 when
    --timeout SECONDS pass first (the task goes on).

    With --from-file, create a task per line and print the counts (created, existing,
    failed) and each failed line: exit 0 when every line made or found its task, 1 when
    some failed (the others are created), 2 when the file is not JSON lines (nothing is
    created)."""
    if from_file is not None:
        given = [
            option
            for option, value in (
                ("NAME", name),
                ("--context", context),
                ("--context-file", context_file),
                ("--version", version),
                ("--idempotency-key", idempotency_key),
                ("--initiator", initiator),
                ("--source-system", source_system),
                ("--reason", reason),
                ("--tag", tag),
                ("--run-at", run_at),
                ("--delay", delay),
                ("--priority", priority),
                ("--wait", wait or None),
                ("--timeout", timeout),
                ("--namespace", None if namespace == "default" else namespace),
            )
            if value is not None
        ]
        if given:
            raise ValidationError(
                f"--from-file takes every field from the file; not with {', '.join(given)}"
            )
        from tasker.cli.task_file import create_from_file

        with common.open_tasker(ctx, with_templates=True) as tasker:
            code = create_from_file(tasker, from_file, as_json=as_json)
        raise typer.Exit(code)
    if name is None:
        raise ValidationError("give a template NAME, or --from-file PATH")
    if timeout is not None and not wait:
        raise ValidationError("--timeout needs --wait")
    if run_at is not None and delay is not None:
        raise ValidationError("give --run-at or --delay, not both")
    request = TaskRequest(
        name=name,
        context=common.read_context(context, context_file),
        namespace=namespace,
        version=version,
        idempotency_key=idempotency_key,
        initiator=initiator,
        source_system=source_system,
        reason=reason,
        tags=tuple(tag or ()),
        run_at=common.parse_time(run_at, "--run-at") if run_at is not None else None,
        delay_seconds=(
            common.parse_duration(delay, "--delay").total_seconds() if delay is not None else None
        ),
        priority=priority,
    )
    with common.open_tasker(ctx, with_templates=True) as tasker:
        task_id, created = tasker.create_task(request, actor=common.actor())
        # Once the request is known valid (nothing is written otherwise): store every
        # template, so workers and other processes can see them.
        tasker.register_templates()
        if not created:
            common.info(f"task {task_id} already exists for idempotency key {idempotency_key!r}")
        if not wait:
            if as_json:
                common.print_json(tasker.get_task(task_id))
            else:
                typer.echo(task_id)
            return
        if hint := unserved_hint(tasker, tasker.template(name, namespace, version)):
            common.info(hint)
        task = wait_for_final(tasker, task_id, json_output=as_json, timeout_seconds=timeout)
    if task is None:
        raise typer.Exit(common.EXIT_TIMED_OUT)
    if as_json:
        common.print_json(task)
    raise typer.Exit(common.exit_code_for(task["status"]))


@app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only tasks in this state.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
    name: Annotated[str | None, typer.Option(help="Only tasks of this template.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    before_id: Annotated[
        int | None,
        typer.Option(
            min=1, max=common.MAX_ID, help="Only tasks with a smaller id (the next page)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of tasks (without steps).")
    ] = False,
) -> None:
    """List tasks, newest first."""
    if status is not None and status not in set(State):
        raise ValidationError(
            f"unknown status {status!r}; one of: {', '.join(s.value for s in State)}"
        )
    with common.open_tasker(ctx) as tasker:
        tasks = tasker.list_tasks(
            status=status, namespace=namespace, name=name, limit=limit, before_id=before_id
        )
    if as_json:
        common.print_json(tasks)
        return
    grid = table("id", "namespace", "name", "version", "status", "created", "completed")
    for t in tasks:
        grid.add_row(
            str(t["id"]),
            t["namespace"],
            t["name"],
            t["version"],
            state_text(t["status"]),
            when(t["created_at"]),
            when(t["completed_at"]),
        )
    common.stdout_console().print(grid)
    if len(tasks) == limit:
        common.info(f"more may follow: --before-id {tasks[-1]['id']}")


@app.command("show")
def show_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Show a task: its DAG of steps with states, attempts, next retry, blocking reason
    and errors, and its execution context."""
    with common.open_tasker(ctx) as tasker:
        task = tasker.get_task(task_id)
        if as_json:
            common.print_json(task)
            return
        readiness = {row.name: row for row in tasker.readiness(task_id)}
        levels = tasker.dependency_levels(task_id)
        execution = tasker.execution_context(task_id)
        unserved = _unserved_handlers(tasker, task, readiness)
        now = tasker.now()
        child_states = {c["id"]: c["status"] for c in tasker.children_of(task_id)}
        waits = {wait["step"]: describe_wait(wait) for wait in tasker.flow_waits(task_id)}
    console = common.stdout_console()
    console.print(
        Text.assemble(
            (f"task {task['id']} ", "bold"),
            f"{task['namespace']}/{task['name']}@{task['version']}  ",
            state_text(task["status"]),
        )
    )
    console.print(f"created {when(task['created_at'])}  completed {when(task['completed_at'])}")
    if task["run_at"] is not None and task["status"] == "pending":
        console.print(start_line(parse_utc(task["run_at"]), now), style="yellow", markup=False)
    if task["priority"]:
        console.print(f"priority: {task['priority']}")
    for key in ("idempotency_key", "initiator", "source_system", "reason"):
        if task[key]:
            console.print(f"{key}: {task[key]}", markup=False)
    if task["tags"]:
        console.print(f"tags: {', '.join(task['tags'])}", markup=False)
    if task["parent_task_id"] is not None:
        parent_step = task["parent_step_id"]
        console.print(
            f"child of task {task['parent_task_id']} (its step id {parent_step})", markup=False
        )
    console.print(f"context: {json.dumps(task['context'])}", markup=False, highlight=False)
    console.print(
        f"execution: {execution.execution_status} · next: {execution.recommended_action}"
        f" · health: {execution.health_status} · {execution.completion_percentage:g}% done"
        f" ({execution.completed_steps}/{execution.total_steps} complete,"
        f" {execution.failed_steps} failed, {execution.ready_steps} ready)",
        markup=False,
    )
    for said in dict.fromkeys(waits.values()):  # the same wait once, for all its steps
        console.print(f"waiting: {said}", style="yellow", markup=False, highlight=False)
    steps = {step["name"]: step for step in task["steps"]}
    step_levels = {step["name"]: levels.get(step["id"], 0) for step in task["steps"]}
    # Map instances are drawn under their group, the first few of each only.
    depends_on = {name: step["depends_on"] for name, step in steps.items()}
    shown: list[str] = []
    for name, step in steps.items():
        if step["group"] is None:
            shown.append(name)
        elif step["index"] < SHOWN_INSTANCES:
            depends_on[name] = [step["group"]]
            step_levels[name] = step_levels[step["group"]] + 1
            shown.append(name)

    def label(step_name: str) -> Text:
        step = steps[step_name]
        text = Text.assemble(
            (step_name, "bold"),
            "  ",
            state_text(step["status"]),
            f"  attempts {step['attempts']}/{step['max_attempts']}",
        )
        if step["next_retry_at"]:
            text.append(f"  next retry {step['next_retry_at']}", style="yellow")
        row = readiness.get(step_name)
        if step["map"] is not None:
            text.append(f"  map over {step['map']}", style="cyan")
            if step["instances"]:
                total = step["instances"]["total"]
                counts = ", ".join(f"{n} {k}" for k, n in step["instances"].items() if k != "total")
                text.append(f": {total} instances ({counts or 'none'})", style="cyan")
                if total > SHOWN_INSTANCES:
                    text.append(f", the first {SHOWN_INSTANCES} below (--json: all)", style="dim")
        child = step["child_task_id"]
        if row is not None and row.blocking_reason == "scheduled":
            text.append(f"  scheduled: starts at {when(task['run_at'])}", style="yellow")
        elif row is not None and row.blocking_reason == "waiting_for_signal":
            text.append(f"  waiting for signal {step['wait_for']}", style="yellow")
        elif row is not None and row.blocking_reason == "waiting_for_child":
            text.append(
                f"  waiting for child task {child} ({child_states.get(child, '?')})",
                style="yellow",
            )
        elif step_name in waits:
            text.append(f"  waiting: {waits[step_name]}", style="yellow")
        elif step_name in unserved:
            text.append(f"  blocked: no live worker serves handler {unserved[step_name]}")
        elif row is not None and row.blocking_reason not in (None, "finished", "skipped"):
            text.append(f"  blocked: {row.blocking_reason}", style="dim")
        elif row is not None and row.ready_for_execution:
            text.append("  ready", style="green")
        if step["workflow"] is not None and step["status"] != "in_progress":
            workflow = step["workflow"]
            ran = f"child task {child}" if child is not None else "no child task yet"
            text.append(
                f"  workflow {workflow['namespace']}/{workflow['name']}: {ran}", style="cyan"
            )
        if step["error"]:
            text.append(f"  {error_summary(step['error'])}", style="red")
        if step["results"] is not None:  # whole in --json
            text.append(f"  results {result_preview(step['results'])}", style="dim")
        return text

    console.print(
        dag_tree(
            Text("steps (L = dependency level)"),
            shown,
            depends_on,
            step_levels,
            label,
        ),
        soft_wrap=False,  # wrap long labels, never crop
    )


def _unserved_handlers(
    tasker: Tasker, task: dict[str, Any], readiness: dict[str, StepReadiness]
) -> dict[str, str]:
    """``{step name: handler}`` of the steps no live worker serves (from the template)."""
    names = [n for n, row in readiness.items() if row.blocking_reason == NO_WORKER_FOR_HANDLER]
    if not names:
        return {}
    try:
        template = tasker.template(task["name"], task["namespace"], task["version"])
    except TemplateNotFound:  # not expected (a task keeps its template): show the bare reason
        return {}
    return {name: template.step(name).handler or "" for name in names}


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    reason: ReasonOption = None,
) -> None:
    """Cancel a task: its pending and failed steps are cancelled; running ones finish
    but their results are discarded."""
    with common.open_tasker(ctx) as tasker:
        changed = tasker.cancel_task(task_id, actor=common.actor(), reason=reason)
    typer.echo(f"task {task_id} cancelled" if changed else f"task {task_id} was already cancelled")


@app.command("retry")
def retry_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    reason: ReasonOption = None,
) -> None:
    """Re-open the failed steps of a failed task (attempts reset); workers run them again."""
    with common.open_tasker(ctx) as tasker:
        steps = tasker.retry_task(task_id, actor=common.actor(), reason=reason)
    typer.echo(f"task {task_id} retrying: {', '.join(steps) if steps else 'no failed steps'}")


@app.command("prune")
def prune_command(
    ctx: typer.Context,
    finished_before: Annotated[
        str,
        typer.Option("--finished-before", help="Delete tasks finished before this date/time."),
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, max=common.MAX_ID, help="Tasks deleted per transaction."
        ),
    ] = 200,
    pace: common.PaceOption = DEFAULT_PACE,
) -> None:
    """Delete finished tasks (with their steps, history and events) in small batches, with
    a rest after each when --pace is below 1."""
    cutoff = common.parse_time(finished_before, "--finished-before")
    with common.open_tasker(ctx) as tasker:
        deleted = tasker.prune_tasks(cutoff, batch_size=batch_size, pace=pace)
    typer.echo(f"deleted {deleted} tasks finished before {cutoff.isoformat()}")


@app.command("signal")
def signal_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    name: Annotated[str, typer.Argument(help="The signal's name (a step's wait_for).")],
    payload: Annotated[
        str | None,
        typer.Option(help="The signal's payload, any JSON (default null); '-' reads stdin."),
    ] = None,
) -> None:
    """Deliver a signal to the step of a task that waits for it (wait_for). The same
    signal again with the same payload changes nothing; a different payload exits 2."""
    if payload == "-":
        import sys

        payload = sys.stdin.read()
    parsed = common.parse_json_option(payload, "--payload")
    with common.open_tasker(ctx) as tasker:
        receipt = tasker.signal_task(task_id, name, parsed, actor=common.actor())
    if not receipt.created:
        outcome = "already received (same payload): nothing changed"
    elif receipt.released:
        outcome = f"step {receipt.step} goes on"
    else:
        outcome = f"kept for step {receipt.step} (it is not waiting yet)"
    typer.echo(f"task {task_id} signal {name}: {outcome}")
