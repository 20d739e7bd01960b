"""Readiness benchmark: the named readiness queries through ``Database``, on both backends.

Run: ``.venv/bin/pytest -m benchmark tests/benchmarks/bench_readiness.py -s -p no:cacheprovider``

Scenarios: readiness of one task of 1,000 / 10,000 / 50,000 steps in two shapes (wide:
1 -> N-2 -> 1; chain), then readiness and execution context over 5,000 small active tasks
(4-step diamonds). Each is measured on a database of active work only, then again after
adding 1,000,000 finished steps (50,000 complete tasks x 20 chained steps). Data is made
with SQL set operations (generate_series on PostgreSQL, a recursive CTE on SQLite). Each
figure is the median of RUNS timed calls, after one warm-up, through ``Database`` and the
named query (so driver and row conversion count). Results go to
benchmarks/results/readiness.json and are printed as a table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tasker.store import open_database
from tasker.store.database import Database
from tasker.store.migrations import upgrade

pytestmark = pytest.mark.benchmark

ADMIN_URL = os.environ.get(
    "TASKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "readiness.json"
RUNS = 11
SIZES = (1_000, 10_000, 50_000)
SMALL_TASKS = 5_000
HISTORY_TASKS, HISTORY_STEPS_PER_TASK = 50_000, 20
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
# PostgreSQL targets from the issue: one task of 1,000 steps <= 10 ms, 10,000 <= 100 ms.
TARGETS_MS = {1_000: 10.0, 10_000: 100.0}


@dataclass(frozen=True)
class Result:
    backend: str
    scenario: str
    steps: int
    history_steps: int
    rows: int
    median_ms: float
    min_ms: float
    runs: int


class Generator:
    """Bulk inserts with set operations; only the series source and schema differ."""

    def __init__(self, url: str):
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(url[len("sqlite:///") :])
        else:
            self.conn = psycopg.connect(url, options="-c search_path=tasker")
        # One time for every column; PostgreSQL needs the type spelled out inside CASE.
        self.t0 = "'2026-01-01T00:00:00.000000Z'" + ("" if self.sqlite else "::timestamptz")
        self.next_task = 1
        self.next_step = 1
        self.run(f"INSERT INTO namespaces (id, name, created_at) VALUES (1, 'bench', {self.t0})")
        self.run(
            "INSERT INTO templates (id, namespace_id, name, version, definition, created_at) "
            f"VALUES (1, 1, 'bench', '1.0.0', '{{}}', {self.t0})"
        )

    def series(self, count: int) -> str:
        """A subquery of one column x = 0 .. count-1 (give it an alias where used)."""
        if self.sqlite:
            return (
                f"(WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s "
                f"WHERE x < {count - 1}) SELECT x FROM s)"
            )
        return f"(SELECT g.x FROM generate_series(0, {count - 1}) AS g(x))"

    def run(self, sql: str) -> None:
        self.conn.execute(sql)
        self.conn.commit()

    def tasks(self, count: int, steps_each: int, status: str) -> int:
        first = self.next_task
        self.run(
            "INSERT INTO tasks (id, template_id, namespace, name, version, status, context, "
            "total_steps, created_at, updated_at, completed_at) "
            f"SELECT {first} + t.x, 1, 'bench', 'bench', '1.0.0', '{status}', '{{}}', "
            f"{steps_each}, {self.t0}, {self.t0}, "
            f"CASE WHEN '{status}' = 'complete' THEN {self.t0} END FROM {self.series(count)} t"
        )
        self.next_task += count
        return first

    def steps(self, task_expr: str, position_expr: str, status_expr: str, source: str,
              count: int) -> int:  # fmt: skip
        """Insert ``count`` steps, ids consecutive from the returned one, one per source row
        (``n`` in the expressions is the row number from 0)."""
        first = self.next_step
        self.run(
            "INSERT INTO steps (id, task_id, namespace, name, position, handler, status, "
            "attempts, max_attempts, retryable, backoff_base_seconds, backoff_max_seconds, "
            "backoff_jitter, next_retry_at, last_attempted_at, created_at, updated_at, "
            "completed_at) "
            f"SELECT {first} + n, {task_expr}, 'bench', 's' || ({position_expr}), "
            f"{position_expr}, 'bench:noop', st, "
            "CASE WHEN st = 'pending' THEN 0 ELSE 1 END, 3, true, 1.0, 60.0, 0.1, "
            f"CASE WHEN st = 'error' THEN {self.t0} END, "
            f"CASE WHEN st = 'pending' THEN NULL ELSE {self.t0} END, {self.t0}, {self.t0}, "
            f"CASE WHEN st = 'complete' THEN {self.t0} END "
            f"FROM (SELECT src.n, src.x, {status_expr} AS st FROM {source} src) q"
        )
        self.next_step += count
        return first

    def edges(self, select: str) -> None:
        self.run(f"INSERT INTO step_edges (task_id, from_step_id, to_step_id) {select}")

    def wide(self, size: int) -> int:
        """1 -> size-2 -> 1: the root done, the middle a mix of states, the sink waiting."""
        task = self.tasks(1, size, "in_progress")
        status = (
            "CASE WHEN x = 0 THEN 'complete' WHEN x = " + str(size - 1) + " THEN 'pending' "
            "ELSE (CASE x % 4 WHEN 0 THEN 'complete' WHEN 1 THEN 'pending' "
            "WHEN 2 THEN 'error' ELSE 'in_progress' END) END"
        )
        source = f"(SELECT g.x, g.x AS n FROM {self.series(size)} g)"
        first = self.steps(str(task), "x", status, source, size)
        last = first + size - 1
        middle = f"{self.series(size)} m WHERE m.x BETWEEN 1 AND {size - 2}"
        self.edges(f"SELECT {task}, {first}, {first} + m.x FROM {middle}")
        self.edges(f"SELECT {task}, {first} + m.x, {last} FROM {middle}")
        return task

    def chain(self, size: int) -> int:
        """A chain: the first half complete, then one running step, then pending."""
        task = self.tasks(1, size, "in_progress")
        half = size // 2
        status = (
            f"CASE WHEN x < {half} THEN 'complete' WHEN x = {half} THEN 'in_progress' "
            "ELSE 'pending' END"
        )
        source = f"(SELECT g.x, g.x AS n FROM {self.series(size)} g)"
        first = self.steps(str(task), "x", status, source, size)
        self.edges(
            f"SELECT {task}, {first} + c.x, {first} + c.x + 1 FROM {self.series(size - 1)} c"
        )
        return task

    def diamonds(self, count: int, status: str) -> list[int]:
        """``count`` 4-step diamonds a -> b, a -> c, b and c -> d."""
        first_task = self.tasks(count, 4, "complete" if status == "complete" else "in_progress")
        step_status = (
            "'complete'" if status == "complete"
            else "CASE WHEN x % 4 = 0 THEN 'complete' ELSE 'pending' END"
        )  # fmt: skip
        return self._per_task_steps(first_task, count, 4, step_status, diamond=True)

    def history(self, tasks: int, steps_each: int) -> None:
        first_task = self.tasks(tasks, steps_each, "complete")
        self._per_task_steps(first_task, tasks, steps_each, "'complete'", diamond=False)

    def _per_task_steps(
        self, first_task: int, tasks: int, steps_each: int, status: str, *, diamond: bool
    ) -> list[int]:
        total = tasks * steps_each
        # n enumerates (task, position) pairs: task = n / steps_each, position = n % steps_each.
        source = f"(SELECT g.x AS n, g.x FROM {self.series(total)} g)"
        first = self.steps(
            f"{first_task} + n / {steps_each}", f"n % {steps_each}", status, source, total
        )
        if diamond:
            # a(0) -> b(1), a(0) -> c(2), b(1) -> d(3), c(2) -> d(3); x runs over the diamonds.
            pairs = "(SELECT 0 AS p, 1 AS c UNION ALL SELECT 0, 2 UNION ALL SELECT 1, 3 " \
                    "UNION ALL SELECT 2, 3)"  # fmt: skip
            self.edges(
                f"SELECT {first_task} + d.x, {first} + d.x * 4 + e.p, {first} + d.x * 4 + e.c "
                f"FROM {self.series(tasks)} d CROSS JOIN {pairs} e"
            )
        else:
            self.edges(
                f"SELECT {first_task} + c.x / {steps_each}, {first} + c.x, {first} + c.x + 1 "
                f"FROM {self.series(total)} c WHERE c.x % {steps_each} < {steps_each - 1}"
            )
        return list(range(first_task, first_task + tasks))

    def settle(self) -> None:
        """Bring the tables to the steady state a live system is in (statistics, hint bits,
        visibility map), so autovacuum does not run during the timings."""
        if self.sqlite:
            self.run("ANALYZE")
            # A live system checkpoints its WAL; reads through a huge unmerged WAL are slower.
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            self.conn.autocommit = True
            self.conn.execute("VACUUM ANALYZE")
            self.conn.autocommit = False

    def close(self) -> None:
        self.conn.close()


def measure(backend: str, db: Database, tasks: dict[str, int], small: list[int],
            history: int) -> list[Result]:  # fmt: skip
    """Time every scenario RUNS times, round-robin, so a burst of other work on the machine
    spreads over all scenarios instead of spoiling one; report median and minimum."""

    def query(name: str, **params: Any) -> Callable[[], int]:
        def call() -> int:
            with db.read() as conn:
                return len(conn.fetch_all(name, **params))

        return call

    scenarios: list[tuple[str, int, Callable[[], int]]] = []
    for label, task_id in tasks.items():
        shape, size = label.split(":")
        call = query("get_step_readiness_status", task_id=task_id, step_ids=None, now=NOW)
        scenarios.append((f"readiness {shape}", int(size), call))
    for scenario, name in (
        ("readiness batch", "get_step_readiness_status_batch"),
        ("context batch", "get_task_execution_contexts_batch"),
    ):
        scenarios.append((scenario, len(small) * 4, query(name, task_ids=small, now=NOW)))

    rows = [call() for _, _, call in scenarios]  # warm-up: plans, caches
    times: list[list[float]] = [[] for _ in scenarios]
    for _ in range(RUNS):
        for index, (_, _, call) in enumerate(scenarios):
            started = time.perf_counter()
            call()
            times[index].append((time.perf_counter() - started) * 1000)
    return [
        Result(backend, scenario, steps, history, count, statistics.median(ms), min(ms), RUNS)
        for (scenario, steps, _), count, ms in zip(scenarios, rows, times, strict=True)
    ]


@pytest.fixture
def postgres_bench_url() -> Iterator[str]:
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}")
    name = f"tasker_bench_{os.getpid()}"
    base = ADMIN_URL.rpartition("/")[0]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_backend(backend: str, url: str) -> list[Result]:
    db = open_database(url)
    upgrade(db)
    gen = Generator(url)
    try:
        started = time.perf_counter()
        tasks = {}
        for size in SIZES:
            tasks[f"wide:{size}"] = gen.wide(size)
            tasks[f"chain:{size}"] = gen.chain(size)
        small = gen.diamonds(SMALL_TASKS, "active")
        gen.settle()
        print(f"\n[{backend}] active work generated in {time.perf_counter() - started:.1f} s")
        results = measure(backend, db, tasks, small, history=0)

        started = time.perf_counter()
        gen.history(HISTORY_TASKS, HISTORY_STEPS_PER_TASK)
        gen.settle()
        history = HISTORY_TASKS * HISTORY_STEPS_PER_TASK
        print(f"[{backend}] {history:,} finished steps added in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        results += measure(backend, db, tasks, small, history=history)
    finally:
        gen.close()
        db.close()
    return results


def report(results: list[Result]) -> None:
    stored: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    backends = {r.backend for r in results}
    kept = [r for r in stored.get("results", []) if r["backend"] not in backends]
    stored.update(
        command=".venv/bin/pytest -m benchmark tests/benchmarks/bench_readiness.py -s",
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        # Other work on the machine inflates every figure; this says how busy it was.
        load_average_1m=round(os.getloadavg()[0], 2),
        runs_per_figure=RUNS,
        statistic="median wall time of the named query through Database, in ms",
        results=kept + [asdict(r) for r in results],
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(stored, indent=2) + "\n")

    without = {(r.scenario, r.steps): r for r in results if r.history_steps == 0}
    print(f"\nmedian (min) of {RUNS} runs, ms; load average {os.getloadavg()[0]:.1f}")
    print(f"{'backend':<9}{'scenario':<18}{'steps':>7}{'rows':>7}{'no history':>18}"
          f"{'+1M finished steps':>20}{'ratio':>7}  PostgreSQL target")  # fmt: skip
    for r in results:
        if r.history_steps == 0:
            continue
        base = without[(r.scenario, r.steps)]
        target = ""
        if r.backend == "postgres" and r.scenario.startswith("readiness ") and \
                r.steps in TARGETS_MS and "batch" not in r.scenario:  # fmt: skip
            limit = TARGETS_MS[r.steps]
            ok = max(base.median_ms, r.median_ms) <= limit and r.median_ms <= base.median_ms * 1.2
            target = f"<= {limit:.0f} ms, +20%: {'ok' if ok else 'MISS'}"
        print(f"{r.backend:<9}{r.scenario:<18}{r.steps:>7}{r.rows:>7}"
              f"{base.median_ms:>10.1f} ({base.min_ms:>5.1f})"
              f"{r.median_ms:>12.1f} ({r.min_ms:>5.1f})"
              f"{r.median_ms / base.median_ms:>7.2f}  {target}")  # fmt: skip


def test_readiness_benchmark_postgres(postgres_bench_url: str) -> None:
    results = run_backend("postgres", postgres_bench_url)
    report(results)
    assert all(r.rows > 0 for r in results)


def test_readiness_benchmark_sqlite(tmp_path: Path) -> None:
    results = run_backend("sqlite", f"sqlite:///{tmp_path}/bench.db")
    report(results)
    assert all(r.rows > 0 for r in results)
