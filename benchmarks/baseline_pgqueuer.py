"""PgQueuer as a same-run baseline: schema, enqueueing, the worker process, the readings.

Worker process (drains the queue, then exits)::

    python -m benchmarks.baseline_pgqueuer URL BATCH_SIZE noop|fan

It uses PgQueuer's asyncpg driver (one connection, as its documentation shows), falling
back to its psycopg driver when asyncpg is missing; that driver serialises queries
behind a notification wait, which costs about a second per dequeue round here.
``QueueManager.run(mode=drain)`` with the given dequeue batch size, no per-worker
concurrency cap, async no-op entrypoints. Times come from ``pgqueuer_log`` (``created``
defaults to ``now()``): first ``picked`` -> last ``successful``. The fan-out emulation:
``fan_start`` enqueues ``width`` ``fan_leaf`` jobs in one statement; each leaf decrements
a counter row in its own transaction (a small psycopg pool) and the one that reaches zero
enqueues ``fan_final``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import resource
import sys
from datetime import timedelta
from typing import Any

import psycopg
import psycopg_pool

ENTRYPOINTS = {"noop": ["noop"], "fan": ["fan_start", "fan_leaf", "fan_final"]}
COUNTER_TABLE = "CREATE TABLE public.bench_counter (id int PRIMARY KEY, remaining int NOT NULL)"


def driver_name() -> str:
    return "asyncpg" if importlib.util.find_spec("asyncpg") else "psycopg"


async def _driver(url: str) -> tuple[Any, Any]:
    """A PgQueuer driver on a new connection, and that connection (to close it)."""
    if driver_name() == "asyncpg":
        import asyncpg
        from pgqueuer import AsyncpgDriver

        raw = await asyncpg.connect(url)
        return AsyncpgDriver(raw), raw
    from pgqueuer import PsycopgDriver

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    return PsycopgDriver(conn), conn


async def _queries(url: str) -> tuple[Any, Any]:
    from pgqueuer import Queries

    driver, conn = await _driver(url)
    return Queries(driver), conn


async def install(url: str) -> None:
    queries, conn = await _queries(url)
    try:
        await queries.install()
    finally:
        await conn.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as plain:
        await plain.execute(COUNTER_TABLE)


async def enqueue_noop(url: str, count: int) -> None:
    queries, conn = await _queries(url)
    try:
        await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
    finally:
        await conn.close()


async def enqueue_fan(url: str, width: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as plain:
        await plain.execute("INSERT INTO public.bench_counter VALUES (1, %s)", [width])
    queries, conn = await _queries(url)
    try:
        await queries.enqueue("fan_start", str(width).encode())
    finally:
        await conn.close()


def readings(url: str, workload: str) -> dict[str, Any]:
    first, last = ("noop", "noop") if workload == "noop" else ("fan_start", "fan_final")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT min(created) FILTER (WHERE status = 'picked' AND entrypoint = %s),"
            " max(created) FILTER (WHERE status = 'successful' AND entrypoint = %s),"
            " count(*) FILTER (WHERE status = 'successful'),"
            " count(*) FILTER (WHERE status NOT IN ('queued', 'picked', 'successful'))"
            " FROM public.pgqueuer_log WHERE entrypoint = ANY(%s)",
            [first, last, ENTRYPOINTS[workload]],
        ).fetchone()
    assert row is not None
    return {"first_started_at": row[0], "last_completed_at": row[1], "completed": row[2],
            "failed": row[3]}  # fmt: skip


def cpu_seconds() -> float:
    """User + system CPU of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def work(url: str, batch_size: int) -> None:
    from pgqueuer import PgQueuer
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode

    driver, conn = await _driver(url)
    pool = psycopg_pool.AsyncConnectionPool(url, min_size=1, max_size=4, open=False)
    await pool.open()
    pgq = PgQueuer(driver)
    queries = pgq.queries
    assert queries is not None
    done = 0

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        nonlocal done
        done += 1

    @pgq.entrypoint("fan_start")
    async def fan_start(job: Job) -> None:
        nonlocal done
        width = int((job.payload or b"0").decode())
        await queries.enqueue(["fan_leaf"] * width, [None] * width, [0] * width)
        done += 1

    @pgq.entrypoint("fan_leaf")
    async def fan_leaf(job: Job) -> None:
        nonlocal done
        async with pool.connection() as leaf_conn:
            cursor = await leaf_conn.execute(
                "UPDATE public.bench_counter SET remaining = remaining - 1 WHERE id = 1"
                " RETURNING remaining"
            )
            row = await cursor.fetchone()
        if row is not None and row[0] == 0:
            await queries.enqueue("fan_final", None)
        done += 1

    @pgq.entrypoint("fan_final")
    async def fan_final(job: Job) -> None:
        nonlocal done
        done += 1

    start_up = cpu_seconds()
    print("pgqueuer worker ready", flush=True)
    try:
        await pgq.qm.run(
            batch_size=batch_size,
            mode=QueueExecutionMode.drain,
            dequeue_timeout=timedelta(seconds=1),
            log_aggregation_interval=timedelta(0),  # keeps pgqueuer_log rows for readings
        )
    finally:
        print(f"executed {done}", flush=True)
        print(f"cpu_seconds {cpu_seconds() - start_up:.3f}", flush=True)
        await pool.close()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(work(sys.argv[1], int(sys.argv[2])))  # argv[3], the workload, needs nothing
