"""Procrastinate as a same-run baseline: schema, deferring, the worker process, the readings.

Worker process::

    python -m benchmarks.baseline_procrastinate URL CONCURRENCY noop|fan

``App(PsycopgConnector)``, async no-op tasks, ``run_worker_async(concurrency=N)``: with
``wait=False`` for ``noop`` (it exits once the queue is empty); for ``fan`` the queue is
empty for an instant after ``fan_start`` is fetched, so there the worker waits and is
stopped (gracefully, by cancelling it) when ``fan_final`` has run. The connector's
pool gets ``CONCURRENCY + 2`` connections at most, so no fetch loop waits for one.
Times come from ``procrastinate_events`` (``at`` defaults to ``now()``): first
``started`` -> last ``succeeded``. The fan-out emulation works as in
:mod:`benchmarks.baseline_pgqueuer` (``batch_defer_async`` for the leaves, a counter row,
the last leaf defers ``fan_final``).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
from typing import Any

import psycopg
import psycopg_pool

ENTRYPOINTS = {"noop": ["noop"], "fan": ["fan_start", "fan_leaf", "fan_final"]}
COUNTER_TABLE = "CREATE TABLE public.bench_counter (id int PRIMARY KEY, remaining int NOT NULL)"


def make_app(url: str, pool_max: int = 4) -> Any:
    from procrastinate import App, PsycopgConnector

    return App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=pool_max))


async def install(url: str) -> None:
    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(COUNTER_TABLE)


async def enqueue_noop(url: str, count: int) -> None:
    app = make_app(url)
    async with app.open_async():
        await app.configure_task("noop").batch_defer_async(*([{}] * count))


async def enqueue_fan(url: str, width: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("INSERT INTO public.bench_counter VALUES (1, %s)", [width])
    app = make_app(url)
    async with app.open_async():
        await app.configure_task("fan_start").defer_async(width=width)


def readings(url: str, workload: str) -> dict[str, Any]:
    first, last = ("noop", "noop") if workload == "noop" else ("fan_start", "fan_final")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT min(e.at) FILTER (WHERE e.type = 'started' AND j.task_name = %s),"
            " max(e.at) FILTER (WHERE e.type = 'succeeded' AND j.task_name = %s),"
            " count(*) FILTER (WHERE e.type = 'succeeded'),"
            " count(*) FILTER (WHERE e.type = 'failed')"
            " FROM public.procrastinate_events e"
            " JOIN public.procrastinate_jobs j ON j.id = e.job_id"
            " WHERE j.task_name = ANY(%s)",
            [first, last, ENTRYPOINTS[workload]],
        ).fetchone()
    assert row is not None
    return {"first_started_at": row[0], "last_completed_at": row[1], "completed": row[2],
            "failed": row[3]}  # fmt: skip


def cpu_seconds() -> float:
    """User + system CPU of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def work(url: str, concurrency: int, workload: str) -> None:
    # (The type ignores below: App.task is untyped in Procrastinate's stubs.)
    app = make_app(url, pool_max=concurrency + 2)
    pool = psycopg_pool.AsyncConnectionPool(url, min_size=1, max_size=4, open=False)
    await pool.open()
    finished = asyncio.Event()
    done = 0

    @app.task(name="noop")  # type: ignore[untyped-decorator,unused-ignore]
    async def noop() -> None:
        nonlocal done
        done += 1

    @app.task(name="fan_start")  # type: ignore[untyped-decorator,unused-ignore]
    async def fan_start(width: int) -> None:
        nonlocal done
        await fan_leaf.batch_defer_async(*([{}] * width))
        done += 1

    @app.task(name="fan_leaf")  # type: ignore[untyped-decorator,unused-ignore]
    async def fan_leaf() -> None:
        nonlocal done
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE public.bench_counter SET remaining = remaining - 1 WHERE id = 1"
                " RETURNING remaining"
            )
            row = await cursor.fetchone()
        if row is not None and row[0] == 0:
            await fan_final.defer_async()
        done += 1

    @app.task(name="fan_final")  # type: ignore[untyped-decorator,unused-ignore]
    async def fan_final() -> None:
        nonlocal done
        done += 1
        finished.set()

    start_up = cpu_seconds()
    try:
        async with app.open_async():
            print("procrastinate worker ready", flush=True)
            if workload == "noop":
                await app.run_worker_async(
                    concurrency=concurrency, wait=False, install_signal_handlers=False
                )
                return
            worker = asyncio.create_task(
                app.run_worker_async(concurrency=concurrency, install_signal_handlers=False)
            )
            await finished.wait()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    finally:
        print(f"executed {done}", flush=True)
        print(f"cpu_seconds {cpu_seconds() - start_up:.3f}", flush=True)
        await pool.close()


if __name__ == "__main__":
    # Imported under its package name so the App is not created in ``__main__``
    # (Procrastinate warns about that: workers could not find the tasks by module name).
    from benchmarks.baseline_procrastinate import work as _work

    asyncio.run(_work(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
