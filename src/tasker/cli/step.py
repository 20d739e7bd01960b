"""``tasker step``: manual recovery of one step."""

from __future__ import annotations

from typing import Annotated

import typer

from tasker.cli import common
from tasker.exceptions import ValidationError

app = typer.Typer(name="step", help="Manual recovery of one step.", no_args_is_help=True)

StepArgument = Annotated[str, typer.Argument(help="Step name.")]


@app.command("retry")
def retry_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    step: StepArgument,
    reason: Annotated[
        str | None, typer.Option(help="Why; stored in the transition history.")
    ] = None,
) -> None:
    """Re-open a failed step with its attempts reset; a failed task runs again."""
    with common.open_tasker(ctx) as tasker:
        tasker.retry_step(task_id, step, actor=common.actor(), reason=reason)
    typer.echo(f"task {task_id} step {step}: pending (attempts reset)")


@app.command("resolve")
def resolve_command(
    ctx: typer.Context,
    task_id: common.TaskIdArgument,
    step: StepArgument,
    reason: Annotated[str, typer.Option(help="Why the step is declared done (required).")],
    results: Annotated[
        str | None, typer.Option(help="The step's results, as JSON, for its dependents.")
    ] = None,
    branch: Annotated[
        list[str] | None,
        typer.Option(
            "--branch",
            help="For a step with branches: a child to run (repeat for several); "
            "the other branches are skipped.",
        ),
    ] = None,
) -> None:
    """Declare a pending or failed step done by hand; its dependents proceed."""
    if not reason.strip():
        raise ValidationError("--reason must not be blank")
    parsed = common.parse_json_option(results, "--results")
    with common.open_tasker(ctx) as tasker:
        tasker.resolve_step(
            task_id,
            step,
            reason=reason,
            actor=common.actor(),
            results=parsed,
            branch=tuple(branch) if branch else None,
        )
        status = tasker.task_status(task_id)
    typer.echo(f"task {task_id} step {step}: resolved_manually (task {status})")
