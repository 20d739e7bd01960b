"""The ``tasker`` command: the root app, its global options, and the error boundary.

Every error Tasker raises, and every usage error, ends as one ``error: …`` line on
stderr with the contract's exit code, never a traceback (see ``common``).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperGroup

from tasker import __version__
from tasker.cli import common
from tasker.exceptions import ConfigurationError, TaskerError

# Typer (0.27.2 and later) vendors its own copy of Click, whose classes it does not
# export: the click-typed values below (commands, contexts) are typed `Any` rather than
# imported from the private `typer._click`.
_Command = Any

API_EXTRA_HINT = "pip install 'tasker-workflows[api]'"


def _group(name: str) -> Callable[[], _Command]:
    """The command group ``tasker.cli.<name>.app`` (a Typer app), imported when asked for."""

    def load() -> _Command:
        # Added under a holder as `add_typer` would: made a root itself, the group would
        # offer its own --install-completion.
        holder = typer.Typer(add_completion=False)
        holder.add_typer(importlib.import_module(f"tasker.cli.{name}").app, name=name)
        group: Any = typer.main.get_command(holder)  # a Click group (see _Command)
        return group.commands[name]

    return load


def _single(name: str, module: str, function: str) -> Callable[[], _Command]:
    """The command ``name``, the function ``tasker.cli.<module>.<function>``."""

    def load() -> _Command:
        single = typer.Typer(add_completion=False)  # the root group already offers completion
        single.command(name)(getattr(importlib.import_module(f"tasker.cli.{module}"), function))
        return typer.main.get_command(single)

    return load


def _serve_command() -> _Command:
    single = typer.Typer(add_completion=False)  # the root group already offers completion
    try:
        from tasker.cli import serve
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] not in _API_MODULES:
            raise
        missing = exc.name

        @single.command(
            "serve",
            # `\\[`: Typer's rich help would read `[api]` as markup and drop it.
            help="Serve the REST API (not installed here: pip install 'tasker-workflows\\[api]').",
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
        def serve_missing() -> None:
            raise ConfigurationError(
                f"`tasker serve` needs the API extra ({missing} is not installed): {API_EXTRA_HINT}"
            )

        return typer.main.get_command(single)
    single.command("serve")(serve.serve)
    return typer.main.get_command(single)


# What the `api` extra installs; anything else missing is a real bug, not a hint to print.
_API_MODULES = frozenset({"fastapi", "starlette", "uvicorn", "pydantic"})


class _RootGroup(TyperGroup):
    """The root group, importing a command's module only when that command runs (or help
    lists it): `tasker --version` then loads none of them, and `tasker task show` only the
    ones it uses, not the worker, the demo or `serve` (FastAPI and uvicorn, which a plain
    install leaves out: they come with the ``api`` extra). docs/performance.md has the
    figures; tests/unit/test_cli_imports.py keeps them."""

    lazy_commands: ClassVar[dict[str, Callable[[], _Command]]] = {
        "worker": _single("worker", "worker", "worker_command"),
        "run": _single("run", "run", "run_command"),
        "demo": _single("demo", "demo", "demo_command"),
        "db": _group("db"),
        "templates": _group("templates"),
        "task": _group("task"),
        "step": _group("step"),
        "schedule": _group("schedule"),
        "events": _group("events"),
        "auth": _group("auth"),
        "workers": _single("workers", "health", "workers_command"),
        "health": _single("health", "health", "health_command"),
        "serve": _serve_command,
    }

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return names + [name for name in self.lazy_commands if name not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> _Command | None:
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
    except typer.TyperException as exc:
        # The root of every Click error Typer raises. Usage errors carry the context of
        # the command they are about (`ctx`, public on them though their class is not).
        ctx = getattr(exc, "ctx", None)
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # its class is private, as Typer checks
            # `tasker task` alone. Typer's rich help prints itself while the error is made
            # (its message is then empty); plain help is the message.
            if message.strip():
                typer.echo(message, err=True)
            return common.EXIT_USAGE
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {common.one_line(message)}{hint}", err=True)
        return exc.exit_code  # 2 for usage errors, as common.EXIT_USAGE says
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
