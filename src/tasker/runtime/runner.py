"""Running one task to a final state inside this process (``tasker run``, tests).

The same claim, execute and record steps as a worker, without the worker's
concurrency machinery. With a :class:`~tasker.clock.FakeClock`, waiting for a
backoff moves the clock instead of sleeping, so retries cost no time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tasker.clock import FakeClock
from tasker.engine.attempts import ClaimedStep, Outcome
from tasker.facade import Tasker
from tasker.runtime.executor import execute
from tasker.runtime.handler_threads import HandlerThreads
from tasker.states import SETTLED


def run_until_final(
    tasker: Tasker,
    task_id: int,
    *,
    worker_id: str = "inline",
    concurrency: int = 8,
    on_progress: Callable[[], None] | None = None,
    max_wait_seconds: float | None = None,
) -> str:
    """Run ``task_id``'s steps here until the task is final; returns its status. The
    steps of its child tasks (and theirs) run here too."""
    started = time.monotonic()
    threads = HandlerThreads("tasker-step")
    try:
        while True:
            tree = [task_id, *tasker.open_descendants(task_id)]
            claimed = [
                step for one in tree for step in tasker.claim(worker_id, concurrency, task_id=one)
            ]
            if claimed:
                outcomes = asyncio.run(_run_all(claimed, tasker, threads))
                tasker.record(outcomes, worker_id)
                if on_progress:
                    on_progress()
                continue
            status = tasker.task_status(task_id)
            if status in SETTLED or not any(tasker.has_live_work(task_id=one) for one in tree):
                return status
            if max_wait_seconds is not None and time.monotonic() - started > max_wait_seconds:
                return status
            _wait_for_next(tasker, tree)
    finally:
        # A sync handler abandoned at its timeout may still be running: do not wait for it.
        threads.shutdown(wait=False)


async def _run_all(
    claimed: list[ClaimedStep], tasker: Tasker, threads: HandlerThreads
) -> list[Outcome]:
    limit = tasker.settings.max_result_bytes
    return list(
        await asyncio.gather(
            *(
                execute(
                    step,
                    tasker.registry.resolve_handler,
                    threads,
                    max_result_bytes=limit,
                    ancestry=tasker,
                )
                for step in claimed
            )
        )
    )


def _wait_for_next(tasker: Tasker, tree: list[int]) -> None:
    times = [tasker.next_claimable_at(task_id=one) for one in tree]
    upcoming = min((t for t in times if t is not None), default=None)
    if upcoming is None:
        # Another process holds a step of this task; its outcome or lease expiry will tell.
        if isinstance(tasker.clock, FakeClock):
            tasker.clock.advance(tasker.settings.lease_seconds)
            tasker.reap_expired_leases()
        else:
            time.sleep(0.05)
            tasker.reap_expired_leases()
        return
    if isinstance(tasker.clock, FakeClock):
        if upcoming > tasker.clock.now():
            tasker.clock.set(upcoming)
    else:
        delay = (upcoming - tasker.clock.now()).total_seconds()
        time.sleep(min(max(delay, 0.0), 1.0))
