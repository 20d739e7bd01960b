"""The ``tasker`` command: the root app, its global options, and the error boundary.

Every error Tasker raises, and every usage error, ends as one ``error: …`` line on
stderr with the contract's exit code, never a traceback (see ``common``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated, ClassVar

import typer

# Typer 0.2x ships its own copy of Click, whose exceptions are not importable elsewhere;
# TyperException (public) is the root of ClickException there.
from typer._click import core as click_core
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from tasker import __version__
from tasker.cli import auth, common, db, events, step, task, templates
from tasker.cli.demo import demo_command
from tasker.cli.run import run_command
from tasker.cli.worker import worker_command
from tasker.exceptions import TaskerError


def _serve_command() -> click_core.Command:
    from tasker.cli import serve

    single = typer.Typer(add_completion=False)  # the root group already offers completion
    single.command("serve")(serve.serve)
    return typer.main.get_command(single)


class _RootGroup(TyperGroup):
    """The root group, loading ``serve`` only when it is asked for: it imports FastAPI and
    uvicorn, which would otherwise double the start-up time of every other command."""

    lazy_commands: ClassVar[dict[str, Callable[[], click_core.Command]]] = {"serve": _serve_command}

    def list_commands(self, ctx: click_core.Context) -> list[str]:
        names = super().list_commands(ctx)
        return names + [name for name in self.lazy_commands if name not in names]

    def get_command(self, ctx: click_core.Context, cmd_name: str) -> click_core.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self.lazy_commands[cmd_name](), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="tasker",
    help="Tasker: workflow orchestration for DAGs of Python steps, on SQLite or PostgreSQL.",
    cls=_RootGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(templates.app, name="templates")
app.add_typer(task.app, name="task")
app.add_typer(step.app, name="step")
app.add_typer(events.app, name="events")
app.add_typer(auth.app, name="auth")
app.command("worker")(worker_command)
app.command("run")(run_command)
app.command("demo")(demo_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tasker {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sqlite:///path/to/tasker.db or postgresql://user@host:5432/db "
            "(default: $TASKER_DATABASE_URL, else sqlite:///./tasker.db).",
            show_default=False,
        ),
    ] = None,
    templates_paths: Annotated[
        list[str] | None,
        typer.Option(
            "--templates",
            help=f"Template directories, files or modules; repeatable or {os.pathsep!r}-separated"
            " (default: $TASKER_TEMPLATES).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    ctx.obj = common.GlobalOptions(
        database_url=database_url, templates=common.split_template_paths(templates_paths)
    )


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    with common.ConnectionFailures().installed() as failures:
        return _run(argv, failures)


def _run(argv: list[str] | None, failures: common.ConnectionFailures) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="tasker", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        return common.EXIT_USAGE
    except click_errors.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        typer.echo(f"error: {common.one_line(exc.format_message())}{hint}", err=True)
        return common.EXIT_USAGE
    except typer.TyperException as exc:
        typer.echo(f"error: {common.one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return common.EXIT_TASK_FAILED
    except TaskerError as exc:
        return common.report_error(exc, failures.last)
    return result if isinstance(result, int) else common.EXIT_OK


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`tasker events tail | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = common.EXIT_OK
    sys.exit(code)
