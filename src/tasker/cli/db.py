"""``tasker db``: apply and list schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from tasker.cli import common
from tasker.cli.render import table
from tasker.facade import Tasker
from tasker.serialization import iso
from tasker.store.migrations import MigrationStatus

app = typer.Typer(name="db", help="Apply and list schema migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Apply every pending migration (creates the database schema on first use)."""
    url = common.settings(ctx).database_url
    with Tasker.open(url) as tasker:
        applied = tasker.migrate()
    if not applied:
        typer.echo("already up to date")
    for migration in applied:
        typer.echo(f"applied {_label(migration)}")


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List every migration with the time it was applied, or "pending"."""
    statuses = _statuses(ctx)
    if as_json:
        common.print_json(
            [
                {
                    "version": s.version,
                    "name": s.name,
                    "applied": s.applied,
                    "applied_at": iso(s.applied_at),
                }
                for s in statuses
            ]
        )
        return
    grid = table("version", "name", "applied_at")
    for s in statuses:
        grid.add_row(
            f"{s.version:04d}",
            s.name,
            iso(s.applied_at) if s.applied_at else "[yellow]pending[/yellow]",
        )
    common.stdout_console().print(grid)
    pending = sum(not s.applied for s in statuses)
    if pending:
        common.info(f"{pending} pending: run `tasker db upgrade`")


def _statuses(ctx: typer.Context) -> list[MigrationStatus]:
    if common.missing_sqlite_file(common.settings(ctx).database_url):
        # No file yet: everything is pending, and asking must not create the file.
        from tasker.store.queries import load_migrations

        return [MigrationStatus(v, name, None) for v, name, _ in load_migrations("sqlite")]
    url = common.settings(ctx).database_url
    common.require_sqlite_file(url)
    with Tasker.open(url) as tasker:
        return tasker.migration_status()


def _label(migration: MigrationStatus) -> str:
    return f"{migration.version:04d}_{migration.name}"
