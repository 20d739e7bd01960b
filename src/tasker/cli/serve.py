"""`tasker serve`: the REST API under uvicorn.

The database is opened before uvicorn starts, so a bad setting or an unreachable database
ends the command at once (exit 2 or 3, through the CLI's error boundary) rather than after
a server banner. A missing SQLite file is refused like every other command does; a schema
that is not current only warns: the server starts and ``/health/ready`` answers 503 until
``tasker db upgrade`` has run (what a deployment's readiness probe expects).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import Annotated

import typer
import uvicorn

from tasker.api import ApiOptions, create_app
from tasker.cli import common
from tasker.definitions import TemplateRegistry
from tasker.exceptions import SchemaNotReady
from tasker.facade import Tasker
from tasker.store.migrations import ensure_current


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require bearer tokens (default: $TASKER_AUTH, else off).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs)."""
    settings = common.settings(ctx)
    if auth is not None:
        settings = dataclasses.replace(settings, auth=auth)
    options = ApiOptions.from_env(os.environ)
    registry = TemplateRegistry.from_paths(settings.templates)
    database = common.open_db(ctx)
    tasker = Tasker(database, registry, settings=settings)
    try:
        ensure_current(database)
    except SchemaNotReady as exc:
        common.info(f"warning: {exc}; /health/ready answers 503 until then")
    else:
        tasker.sync_schedules()  # so that GET /v1/schedules lists what its templates declare
    app = create_app(
        tasker,
        auth=settings.auth,
        cors_origins=options.cors_origins,
        max_body_bytes=options.max_body_bytes,
        close_on_shutdown=True,
    )
    mode = "on" if settings.auth else "off"
    common.info(f"Tasker API on http://{host}:{port} (docs: /docs, auth {mode})")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the
    # handler it found: make that a clean exit, as for `tasker worker`.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_cleanly)
    uvicorn.run(app, host=host, port=port)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
