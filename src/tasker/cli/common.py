"""What every command shares: settings from the environment and the global options,
opening Tasker, the actor name, JSON input and output, and turning errors into exit codes.

Exit codes (README.md, the tour): 0 success, 1 the task ended in ``error``/``cancelled``,
2 bad input or usage, 3 cannot reach the database, 4 ``--wait --timeout`` ran out first.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tasker.clock import parse_utc
from tasker.config import Settings
from tasker.exceptions import (
    DatabaseUnavailable,
    SchemaNotReady,
    TaskerError,
    ValidationError,
)
from tasker.payloads import MAX_DEPTH
from tasker.states import SATISFIES_DEPENDENCY
from tasker.store import open_database
from tasker.store.database import Database

if TYPE_CHECKING:  # imported where used: the root command (`--version`) needs neither
    from rich.console import Console

    from tasker.facade import Tasker

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMED_OUT = 4  # `task create --wait --timeout`: the task is not final yet, and may be later

# Final task states, and which of them count as success for the exit code.


@dataclass(frozen=True)
class GlobalOptions:
    """The root command's options; None means "take the environment's"."""

    database_url: str | None = None
    templates: tuple[str, ...] | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    options = ctx.find_root().obj
    return options if isinstance(options, GlobalOptions) else GlobalOptions()


def split_template_paths(values: list[str] | None) -> tuple[str, ...] | None:
    """``--templates`` may be repeated and each value may hold ``os.pathsep``-separated paths."""
    if not values:
        return None
    return tuple(part for value in values for part in value.split(os.pathsep) if part)


def settings(ctx: typer.Context) -> Settings:
    options = global_options(ctx)
    return Settings.from_env(database_url=options.database_url, templates=options.templates)


def open_db(ctx: typer.Context, *, create: bool = False) -> Database:
    """Open the configured database. Unless ``create``, a SQLite file that does not exist
    is not created: the schema is made only by ``tasker db upgrade`` (and ``tasker demo``)."""
    configured = settings(ctx)
    if not create:
        require_sqlite_file(configured.database_url)
    return open_database(configured.database_url, pooler=configured.pooler)


def missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file ``url`` names when that file does not exist yet."""
    if not url.startswith("sqlite:"):
        return None
    from tasker.store.sqlite import path_from_url

    path = path_from_url(url)
    return path if path != ":memory:" and not Path(path).exists() else None


def require_sqlite_file(url: str) -> None:
    if path := missing_sqlite_file(url):
        raise SchemaNotReady(
            f"there is no database at {path}: run `tasker db upgrade` to create it"
        )


def open_tasker(
    ctx: typer.Context, *, with_templates: bool = False, check_handlers: bool = True
) -> Tasker:
    """A Tasker on the configured, fully migrated database.

    Templates are loaded only when the command needs them, so a broken template file
    does not stop ``task list`` or ``task show``; ``check_handlers=False`` loads them
    without importing their handlers (a worker serves those that import). Raises
    SchemaNotReady when migrations are pending; nothing is ever created here.
    """
    from tasker.definitions import TemplateRegistry
    from tasker.facade import Tasker
    from tasker.store.migrations import ensure_current

    current = settings(ctx)
    registry = (
        TemplateRegistry.from_paths(current.templates, check_handlers=check_handlers)
        if with_templates
        else TemplateRegistry()
    )
    database = open_db(ctx)
    try:
        ensure_current(database)
    except BaseException:
        database.close()
        raise
    return Tasker(database, registry, settings=current)


def actor() -> str:
    """Who is acting, for the transition history: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def parse_json_option(value: str | None, option: str) -> Any:
    """The JSON document an option holds; a ValidationError (exit 2) when it is not JSON."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{option} is not valid JSON: {exc}") from None
    except RecursionError:  # the parser recurses: far deeper than anything storable
        raise ValidationError(f"{option} is nested deeper than {MAX_DEPTH} levels") from None


def parse_context(value: str, option: str = "--context") -> dict[str, Any]:
    context = parse_json_option(value, option)
    if not isinstance(context, dict):
        raise ValidationError(
            f"{option} must be a JSON object",
            errors=[f"$: expected an object, got {type(context).__name__}"],
        )
    return context


def read_context(context: str | None, context_file: Path | None) -> dict[str, Any]:
    """The task context from ``--context JSON`` (``-``: read standard input) or
    ``--context-file PATH`` (``-`` too), at most one of them; ``{}`` when neither."""
    if context is not None and context_file is not None:
        raise ValidationError("give --context or --context-file, not both")
    if context_file is not None:
        option = f"--context-file {context_file}"
        return parse_context(read_text(context_file, option), option)
    if context == "-":
        return parse_context(read_text(Path("-"), "--context -"), "--context - (stdin)")
    return parse_context(context if context is not None else "{}")


def read_text(path: Path, option: str) -> str:
    try:
        if str(path) == "-":
            return sys.stdin.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValidationError(f"cannot read {option}: {reason}") from None


def print_json(value: Any) -> None:
    """One JSON document on stdout (indented: it is still one document for any parser)."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


PIPED_WIDTH = 10_000
"""Columns Rich may use when stdout is not a terminal and COLUMNS is unset: tables and
trees keep their natural width instead of wrapping words at Rich's default of 80."""


def stdout_console() -> Console:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
    return console


def info(message: str) -> None:
    """A note for the human, on stderr so that stdout stays parseable."""
    typer.echo(message, err=True)


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


class ConnectionFailures(logging.Handler):
    """Keeps the last failure psycopg's pool logs while connecting (instead of letting
    it print several lines): the pool's own error only says it timed out, not why."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()

    @contextmanager
    def installed(self) -> Iterator[ConnectionFailures]:
        pool_log = logging.getLogger("psycopg.pool")
        propagate = pool_log.propagate
        pool_log.addHandler(self)
        pool_log.propagate = False  # `tasker worker` logs them itself (see worker.py)
        try:
            yield self
        finally:
            pool_log.removeHandler(self)
            pool_log.propagate = propagate


def report_error(exc: TaskerError, connection_failure: str | None = None) -> int:
    """Print ``exc`` as ``error: …`` on stderr and return the exit code it calls for."""
    if isinstance(exc, DatabaseUnavailable):
        message = one_line(str(exc))
        if connection_failure:
            message += f" (last attempt: {one_line(connection_failure)})"
        typer.echo(f"error: cannot reach the database: {message}", err=True)
        return EXIT_UNAVAILABLE
    typer.echo(f"error: {one_line(str(exc))}", err=True)
    if isinstance(exc, ValidationError):
        for problem in exc.errors:
            typer.echo(f"  - {one_line(problem)}", err=True)
    return EXIT_USAGE


def exit_code_for(status: str) -> int:
    return EXIT_OK if status in SATISFIES_DEPENDENCY else EXIT_TASK_FAILED


# The bounds of what the CLI sends to the database, checked before anything is sent, so a
# number too large is a usage error (exit 2) rather than the driver's overflow.
MAX_ID = 2**63 - 1
"""Largest id, event position or batch size: both databases hold signed 64-bit integers."""
MAX_DURATION = timedelta(days=36500)
"""Longest duration accepted (100 years): ``now`` minus it is still a valid time."""
MAX_DURATION_SECONDS = MAX_DURATION.total_seconds()

_DURATION_UNITS_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, option: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta, from zero to
    ``MAX_DURATION``; anything else exits 2."""
    text = value.strip().lower()
    unit = text[-1:] if text[-1:] in _DURATION_UNITS_SECONDS else ""
    number = text[:-1] if unit else text
    try:
        amount = float(number)
    except ValueError:
        amount = math.nan
    if not unit or math.isnan(amount) or amount < 0:
        raise typer.BadParameter(
            f"{value!r} is not a duration such as 30d, 12h, 90m or 45s", param_hint=option
        )
    seconds = amount * _DURATION_UNITS_SECONDS[unit]
    if seconds > MAX_DURATION_SECONDS:
        raise typer.BadParameter(
            f"{value!r} is longer than the longest duration accepted, {MAX_DURATION.days}d",
            param_hint=option,
        )
    return timedelta(seconds=seconds)


def parse_time(value: str, option: str) -> datetime:
    """An ISO 8601 date or time, in UTC; a date means its midnight UTC, a time without zone
    is UTC. A time that is no valid UTC time (year 1 or 9999 past an offset) exits 2."""
    try:
        return parse_utc(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date or time such as 2026-01-31", param_hint=option
        ) from None
    except OverflowError:
        raise typer.BadParameter(
            f"{value!r} is out of range: in UTC it falls outside years 1 to 9999",
            param_hint=option,
        ) from None


TaskIdArgument = Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Task id.")]

# Options shared by `task create` and `run`.
TemplateNameArgument = Annotated[str, typer.Argument(help="Template name.")]
ContextOption = Annotated[
    str | None,
    typer.Option(
        help="The task context, a JSON object; - reads it from stdin.", show_default=False
    ),
]
ContextFileOption = Annotated[
    Path | None,
    typer.Option(
        "--context-file",
        help="Read the task context from this JSON file (- for stdin).",
        show_default=False,
    ),
]
NamespaceOption = Annotated[str, typer.Option(help="Template namespace.")]
PaceOption = Annotated[
    float,
    typer.Option(
        "--pace",
        min=0.01,
        max=1.0,
        help="Share of the time spent deleting: after each batch the prune rests for"
        " the rest (1: back to back).",
    ),
]
VersionOption = Annotated[str | None, typer.Option(help="Template version (default: the highest).")]
