"""``tasker worker``: claim and run steps until stopped (SIGINT/SIGTERM) or, with
``--burst``, until no work is left that could run without outside action."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from tasker.cli import common

LOG_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(worker_id)s] %(name)s: %(message)s"


class _WorkerIdFilter(logging.Filter):
    def __init__(self, worker_id: str):
        super().__init__()
        self.worker_id = worker_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker_id = self.worker_id
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, worker_id, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "worker_id": getattr(record, "worker_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, worker_id: str) -> None:
    handler = logging.StreamHandler()  # stderr
    handler.addFilter(_WorkerIdFilter(worker_id))
    handler.setFormatter(
        JsonLogFormatter() if log_format == "json" else logging.Formatter(LOG_TEXT_FORMAT)
    )
    # psycopg: lost connections and reconnects, which a worker survives.
    for name, level in (("tasker", logging.INFO), ("psycopg", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("psycopg.pool").propagate = True


def worker_command(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(min=1, help="Steps in flight at once.")] = 10,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", help="Only claim steps of this namespace (repeatable)."),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit 0 once no work is left that this worker could do.")
    ] = False,
    lease_seconds: Annotated[
        float | None,
        typer.Option(min=0.001, help="Claim lifetime without a heartbeat (default: settings)."),
    ] = None,
    grace_seconds: Annotated[
        float, typer.Option(min=0, help="On stop, how long running steps may finish.")
    ] = 30.0,
) -> None:
    """Run a worker: claim ready steps of any task and run them."""
    from tasker.engine.worker import Worker, WorkerOptions

    with common.open_tasker(ctx, with_templates=True) as tasker:
        if len(tasker.registry):
            tasker.register_templates()  # so `task create` elsewhere can find them
        worker = Worker(
            tasker,
            WorkerOptions(
                concurrency=concurrency,
                namespaces=tuple(namespace or ()),
                burst=burst,
                lease_seconds=lease_seconds,
                grace_seconds=grace_seconds,
            ),
        )
        configure_logging(tasker.settings.log_format, worker.worker_id)
        log = logging.getLogger("tasker.worker")
        log.info(
            "worker %s started: concurrency %d, namespaces %s%s",
            worker.worker_id,
            concurrency,
            ", ".join(namespace) if namespace else "all",
            ", burst" if burst else "",
        )

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, _stopper(worker.stop, log, signum))
            try:
                await worker.run()
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)

        asyncio.run(run())
        log.info("worker %s stopped: %d steps executed", worker.worker_id, worker.executed)


def _stopper(stop: Callable[[], None], log: logging.Logger, signum: int) -> Callable[[], None]:
    name = signal.Signals(signum).name

    def handler() -> None:
        log.info("%s received: stopping (running steps may finish)", name)
        stop()

    return handler
