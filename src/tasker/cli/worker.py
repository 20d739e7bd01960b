"""``tasker worker``: claim and run steps until stopped (SIGINT/SIGTERM) or, with
``--burst``, until no work is left that could run without outside action."""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from collections.abc import Callable
from typing import Annotated

import typer

from tasker.cli import common
from tasker.events.bus import EventBus
from tasker.observability.logging import configure_logging
from tasker.observability.tracing import configure_from_env as configure_tracing

MAX_CONCURRENCY = 10_000  # steps in flight in one process; the workers table holds an int32


class Pool(enum.StrEnum):
    thread = "thread"
    process = "process"


def worker_command(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_CONCURRENCY,
            help="Steps in flight at once (default: sized from the handlers' durations, "
            "about 0.5 s of work, 10 to 200 steps; 10 with --pool process).",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", help="Only claim steps of this namespace (repeatable)."),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit 0 once no work is left that this worker could do.")
    ] = False,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=common.MAX_DURATION_SECONDS,
            help="Claim lifetime without a heartbeat (default: settings).",
        ),
    ] = None,
    grace_seconds: Annotated[
        float,
        typer.Option(
            min=0,
            max=common.MAX_DURATION_SECONDS,
            help="On stop, how long running steps may finish.",
        ),
    ] = 30.0,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port.")
    ] = None,
    pool: Annotated[
        Pool,
        typer.Option(
            help="Where handlers run: 'thread' (a hung sync handler is abandoned at its "
            "timeout) or 'process' (each running step in a child process, killed at its "
            "timeout).",
        ),
    ] = Pool.thread,
    subscriber: Annotated[
        list[str] | None,
        typer.Option(
            "--subscriber",
            help="Deliver events to a callable: 'PATTERN=module:function' (repeatable; "
            "added to TASKER_SUBSCRIBERS).",
        ),
    ] = None,
) -> None:
    """Run a worker: claim ready steps of any task and run them."""
    from tasker.runtime.worker import Worker, WorkerOptions

    # A handler that does not import here does not stop the worker: it serves the others
    # and leaves those steps to workers that have them (it says which at start-up).
    with common.open_tasker(ctx, with_templates=True, check_handlers=False) as tasker:
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
                metrics_port=metrics_port,
                pool=pool.value,
            ),
            bus=_bus([*tasker.settings.subscribers, *(subscriber or [])]),
        )
        configure_logging(tasker.settings.log_format, worker_id=worker.worker_id)
        configure_tracing(service_name="tasker-worker")
        log = logging.getLogger("tasker.worker")
        log.info(
            "worker %s started: concurrency %s, %s pool, namespaces %s%s",
            worker.worker_id,
            worker.sizing.fixed_concurrency or "sized from handler durations (10 to 200)",
            pool.value,
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


def _bus(specs: list[str]) -> EventBus | None:
    if not specs:
        return None
    bus = EventBus()
    bus.subscribe_paths(specs)
    return bus


def _stopper(stop: Callable[[], None], log: logging.Logger, signum: int) -> Callable[[], None]:
    name = signal.Signals(signum).name

    def handler() -> None:
        log.info("%s received: stopping (running steps may finish)", name)
        stop()

    return handler
