"""``tasker schedule``: the cron schedules templates declare; pause and resume them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tasker.cli import common
from tasker.cli.render import table, when
from tasker.exceptions import ValidationError

app = typer.Typer(
    name="schedule", help="List, pause and resume cron schedules.", no_args_is_help=True
)

TemplateArgument = Annotated[str, typer.Argument(help="The template, as NAMESPACE/NAME.")]
ScheduleArgument = Annotated[str, typer.Argument(help="The schedule's name.")]
ReasonOption = Annotated[str | None, typer.Option(help="Why; stored in the schedule's history.")]


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Every schedule with its cron, zone and next fire time (the templates loaded here
    are stored first, as a worker stores them)."""
    with common.open_tasker(ctx, with_templates=True) as tasker:
        tasker.sync_schedules()
        schedules = tasker.schedules()
    if as_json:
        common.print_json(schedules)
        return
    if not schedules:
        common.info("no schedules (templates declare them under `schedules:`)")
        return
    grid = table("template", "schedule", "cron", "timezone", "catchup", "next fire", "last task")
    for s in schedules:
        grid.add_row(
            f"{s['namespace']}/{s['template']}",
            s["name"],
            s["cron"],
            s["timezone"],
            s["catchup"],
            f"paused by {s['paused_by'] or '?'}" if s["paused"] else when(s["next_fire_at"]),
            str(s["last_task_id"] or "—"),
        )
    common.stdout_console().print(grid)


def _change(
    ctx: typer.Context, template: str, schedule: str, *, paused: bool, reason: str | None
) -> dict[str, Any]:
    namespace, slash, name = template.partition("/")
    if not slash or not namespace or not name:
        raise ValidationError(f"{template!r} is not NAMESPACE/NAME (e.g. reports/nightly)")
    with common.open_tasker(ctx, with_templates=True) as tasker:
        tasker.sync_schedules()
        return tasker.set_schedule_paused(
            namespace, name, schedule, paused=paused, actor=common.actor(), reason=reason
        )


@app.command("pause")
def pause_command(
    ctx: typer.Context,
    template: TemplateArgument,
    schedule: ScheduleArgument,
    reason: ReasonOption = None,
) -> None:
    """Stop firing a schedule until it is resumed (kept across restarts)."""
    _change(ctx, template, schedule, paused=True, reason=reason)
    typer.echo(f"schedule {template}:{schedule}: paused")


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    template: TemplateArgument,
    schedule: ScheduleArgument,
    reason: ReasonOption = None,
) -> None:
    """Fire a paused schedule again, from its next tick (the paused ticks are skipped)."""
    row = _change(ctx, template, schedule, paused=False, reason=reason)
    typer.echo(f"schedule {template}:{schedule}: active, next fire {when(row['next_fire_at'])}")
