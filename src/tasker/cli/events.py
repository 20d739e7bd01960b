"""``tasker events``: read the durable event log."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from tasker.cli import common
from tasker.engine.retention import DEFAULT_PACE

app = typer.Typer(name="events", help="Read the event log.", no_args_is_help=True)

FOLLOW_POLL_SECONDS = 0.5
PAGE_SIZE = 1000


@app.command("tail")
def tail_command(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")
    ] = False,
    cursor: Annotated[
        int,
        typer.Option("--from", min=0, max=common.MAX_ID, help="Print events after this event id."),
    ] = 0,
    task_id: Annotated[
        int | None,
        typer.Option("--task", min=1, max=common.MAX_ID, help="Only this task's events."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, as the event log holds it.")
    ] = False,
) -> None:
    """Print the events after --from, oldest first; with --follow, wait for more until
    SIGINT or SIGTERM (exit 0)."""
    with common.open_tasker(ctx) as tasker, _stop_on_signals() as stopped:
        while not stopped.is_set():
            page = tasker.events(cursor, task_id=task_id, limit=PAGE_SIZE)
            for event in page:
                sys.stdout.write((json.dumps(event) if as_json else _line(event)) + "\n")
                cursor = event["id"]
            sys.stdout.flush()
            if len(page) == PAGE_SIZE:
                continue
            if not follow:
                break
            stopped.wait(FOLLOW_POLL_SECONDS)


def _line(event: dict[str, Any]) -> str:
    where = f"task {event['task_id']}" if event["task_id"] is not None else "-"
    if event["step_name"]:
        where += f" step {event['step_name']}"
    payload = json.dumps(event["payload"]) if event["payload"] else ""
    return f"{event['id']:>8}  {event['created_at']}  {event['name']:<26} {where}  {payload}"


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so following ends with exit 0 between polls."""
    stopped = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, lambda *_: stopped.set())
    try:
        yield stopped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@app.command("prune")
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete events older than this (30d, 12h...).")
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, max=common.MAX_ID, help="Events deleted per transaction."
        ),
    ] = 1000,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also delete events that active durable consumers have not read."
        ),
    ] = False,
    pace: common.PaceOption = DEFAULT_PACE,
) -> None:
    """Delete old events in small batches, so workers are never held up. Events that an
    active durable consumer has not read yet are kept (see docs/operations.md)."""
    age = common.parse_duration(older_than, "--older-than")
    with common.open_tasker(ctx) as tasker:
        pruned = tasker.prune_events(age, batch_size=batch_size, force=force, pace=pace)
    typer.echo(f"deleted {pruned.deleted} events older than {older_than}")
    if pruned.kept:
        typer.echo(
            f"kept {pruned.kept} events not yet read by consumer {pruned.consumer!r}"
            " (--force deletes them)"
        )
