"""What every scenario shares: scratch databases, templates, probes, results, statistics.

Nothing here knows a scenario. A :class:`Run` holds one invocation's settings (sizes
shrink with ``--smoke``), its scratch directory and the results gathered so far, so a
later scenario can relate its figures to an earlier one measured in the same run.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import shutil
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import dict_row

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "TASKER_BENCH_POSTGRES_URL",
    os.environ.get("TASKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
NAMESPACE = "bench"
NOOP = "tasker.builtin_handlers:noop"
ASYNC_NOOP = "bench_handlers:async_noop"
SLEEP_ON_FIRST_ATTEMPT = "bench_handlers:sleep_on_first_attempt"
DB_PREFIX = "tasker_bench_"

# Written next to the templates and put on every worker's PYTHONPATH.
BENCH_HANDLERS = '''\
"""Handlers only the benchmarks use."""

import time


async def async_noop(step):
    return {}


def items(step):
    """A list of config["count"] items, for the map scenario."""
    return {"items": list(range(step.config["count"]))}


def fan_in(step):
    """Receives every result of the group before it; returns how many."""
    return {"received": sum(len(r) if isinstance(r, list) else 1 for r in step.results.values())}


def sleep_on_first_attempt(step):
    """Sleep config["sleep_seconds"] on the first attempt only (the crash scenario kills it)."""
    if step.attempt == 1:
        time.sleep(step.config.get("sleep_seconds", 30))
    return {"attempt": step.attempt}
'''


# -- results ---------------------------------------------------------------------------


@dataclass
class Figure:
    """One number of the final table.

    ``ratios`` relate it to baselines measured in the same run (label -> value/baseline),
    ``better`` says which direction is good ("higher" or "lower").
    """

    scenario: str
    backend: str
    measure: str
    value: float | None
    unit: str
    better: str = "higher"
    ratios: dict[str, float] = field(default_factory=dict)
    target: str | None = None
    met: bool | None = None
    key: str = ""  # stable id used to find the figure across scenarios
    detail: str = ""  # a short second reading for the table (wall time, spread...)

    def ratio_to(self, label: str, baseline: float | None) -> None:
        if self.value is not None and baseline:
            self.ratios[label] = self.value / baseline


@dataclass
class ScenarioResult:
    scenario: str
    sizes: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    duration_seconds: float = 0.0
    write_json: bool = True  # False when another tool owns <scenario>.json

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "skipped": self.skipped,
            "duration_seconds": round(self.duration_seconds, 3),
            "sizes": self.sizes,
            "summary": [asdict(f) for f in self.figures],
            "notes": self.notes,
            "samples": self.samples,
        }


@dataclass
class Run:
    """One invocation of ``python -m benchmarks``."""

    smoke: bool
    backends: tuple[str, ...]
    out: Path
    workdir: Path
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    _postgres: bool | None = None

    def pick(self, full: Any, smoke: Any) -> Any:
        return smoke if self.smoke else full

    @property
    def templates_dir(self) -> Path:
        path = self.workdir / "templates"
        if not path.exists():
            path.mkdir(parents=True)
            (self.workdir / "bench_handlers.py").write_text(BENCH_HANDLERS)
        return path

    def python_path(self) -> str:
        parts = [str(self.workdir), str(REPO_ROOT), str(REPO_ROOT / "src")]
        if os.environ.get("PYTHONPATH"):
            parts.append(os.environ["PYTHONPATH"])
        return os.pathsep.join(parts)

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        self.templates_dir  # noqa: B018 -- creates the directory and the handlers module
        return {
            **os.environ,
            "TASKER_DATABASE_URL": database_url,
            "TASKER_TEMPLATES": str(self.templates_dir),
            "PYTHONPATH": self.python_path(),
            **extra,
        }

    def postgres_available(self) -> bool:
        if self._postgres is None:
            try:
                admin("SELECT 1", wait_seconds=0)
                self._postgres = True
            except psycopg.OperationalError:
                self._postgres = False
        return self._postgres

    def uses(self, backend: str) -> bool:
        if backend not in self.backends:
            return False
        return backend != "postgres" or self.postgres_available()

    def scenario_backends(self, wanted: Sequence[str] = ("postgres", "sqlite")) -> list[str]:
        return [b for b in wanted if self.uses(b)]


# -- templates -------------------------------------------------------------------------


def step(
    name: str, handler: str = NOOP, depends_on: Sequence[str] = (), **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "handler": handler}
    if depends_on:
        spec["depends_on"] = list(depends_on)
    spec.update(extra)
    return spec


def single(handler: str = NOOP) -> list[dict[str, Any]]:
    return [step("only", handler)]


def diamond() -> list[dict[str, Any]]:
    return [
        step("a"),
        step("b", depends_on=["a"]),
        step("c", depends_on=["a"]),
        step("d", depends_on=["b", "c"]),
    ]


def fan_out_in(width: int) -> list[dict[str, Any]]:
    leaves = [f"leaf_{i:04d}" for i in range(width)]
    return [
        step("start"),
        *(step(leaf, depends_on=["start"]) for leaf in leaves),
        step("merge", depends_on=leaves),
    ]


def chain(length: int) -> list[dict[str, Any]]:
    names = [f"s{i:04d}" for i in range(length)]
    return [step(n, depends_on=[names[i - 1]] if i else []) for i, n in enumerate(names)]


def wide(width: int) -> list[dict[str, Any]]:
    return [step(f"w{i:04d}") for i in range(width)]


def write_template(
    run: Run,
    name: str,
    steps: list[dict[str, Any]],
    *,
    keys: dict[str, Any] | None = None,
    **defaults: Any,
) -> str:
    """Write the template ``bench/<name>`` (idempotent within a run); returns its name.
    ``keys`` are further top-level template keys (``concurrency``, for example)."""
    path = run.templates_dir / f"{name}.yaml"
    document = {
        "namespace": NAMESPACE,
        "name": name,
        "version": "1.0.0",
        **(keys or {}),
        "defaults": {"max_attempts": 3, "timeout_seconds": 300, **defaults},
        "steps": steps,
    }
    text = yaml.safe_dump(document, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return name


# -- PostgreSQL ------------------------------------------------------------------------


def server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def admin(
    sql: str, params: Sequence[Any] | None = None, *, wait_seconds: float = 60.0
) -> list[dict[str, Any]]:
    """Run ``sql`` on the maintenance database. A server that is restarting (the
    integration tests restart the shared cluster) is waited for up to ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        with conn:
            cursor = conn.cursor(row_factory=dict_row)
            cursor.execute(sql, params)  # type: ignore[arg-type,unused-ignore]
            return cursor.fetchall() if cursor.description else []


def server_started_at() -> Any:
    """When the PostgreSQL server last (re)started, or None when it cannot be reached."""
    try:
        return admin("SELECT pg_postmaster_start_time() AS t", wait_seconds=30)[0]["t"]
    except psycopg.Error:
        return None


def drop_database(dbname: str) -> None:
    admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


class Dropper:
    """Drops scratch databases. A DROP DATABASE waits for a checkpoint here (0.5-2 s), so
    a smoke run, which judges no timing, renames the database and drops it on a
    background thread; a measured run drops it at once, between cases, never during one.
    """

    def __init__(self) -> None:
        self.background = False
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None

    def release(self, dbname: str) -> None:
        if not self.background:
            drop_database(dbname)
            return
        trash = f"{dbname[:40]}_trash_{uuid.uuid4().hex[:8]}"
        try:
            wait_until_unused(dbname, 5.0)
            admin(f'ALTER DATABASE "{dbname}" RENAME TO "{trash}"')
        except psycopg.Error:
            drop_database(dbname)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="dropper", daemon=True)
            self._thread.start()
        self._queue.put(trash)

    def _drain(self) -> None:
        while True:
            name = self._queue.get()
            try:
                drop_database(name)
            except psycopg.Error:
                pass  # left for the next run's sweep()
            finally:
                self._queue.task_done()

    def finish(self) -> None:
        self._queue.join()

    @staticmethod
    def sweep() -> None:
        """Drop what an interrupted earlier run left behind (only our trash names)."""
        for row in admin(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [DB_PREFIX + "%_trash_%"]
        ):
            drop_database(row["datname"])


DROPPER = Dropper()


@contextlib.contextmanager
def scratch_postgres(name: str, template: str | None = None) -> Iterator[str]:
    """A fresh database ``tasker_bench_<name>`` (a copy of ``template`` if given), dropped
    on exit; yields its URL."""
    dbname = name if name.startswith(DB_PREFIX) else DB_PREFIX + name
    drop_database(dbname)
    clause = f' TEMPLATE "{template}"' if template else ""
    admin(f'CREATE DATABASE "{dbname}"{clause}')
    try:
        yield server_url(dbname)
    finally:
        DROPPER.release(dbname)


def dbname_of(url: str) -> str:
    return url.rpartition("/")[2]


def wait_until_unused(dbname: str, timeout_seconds: float = 10.0) -> None:
    """Wait until no backend is connected to ``dbname`` (exited backends have flushed their
    statistics by then, and the database can serve as a template)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        rows = admin("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s", [dbname])
        if rows[0]["n"] == 0:
            return
        time.sleep(0.02)


def transaction_counts(dbname: str) -> dict[str, int]:
    rows = admin(
        "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s", [dbname]
    )
    return {"commit": int(rows[0]["xact_commit"]), "rollback": int(rows[0]["xact_rollback"])}


# -- Tasker databases --------------------------------------------------------------------


@contextlib.contextmanager
def tasker_database(run: Run, backend: str, name: str) -> Iterator[str]:
    """A fresh, migrated Tasker database of ``backend`` for one scenario; yields its URL."""
    from tasker.store import open_database
    from tasker.store.migrations import upgrade

    if backend == "postgres":
        with scratch_postgres(name) as url:
            db = open_database(url)
            try:
                upgrade(db)
            finally:
                db.close()
            yield url
        return
    path = run.workdir / f"{name}.db"
    remove_sqlite(path)
    url = f"sqlite:///{path}"
    db = open_database(url)
    try:
        upgrade(db)
    finally:
        db.close()
    try:
        yield url
    finally:
        remove_sqlite(path)


@contextlib.contextmanager
def clone(run: Run, url: str, name: str) -> Iterator[str]:
    """A copy of the (closed, unused) database at ``url``, removed on exit."""
    if url.startswith("sqlite:"):
        source = Path(url[len("sqlite:///") :])
        target = run.workdir / f"{name}.db"
        remove_sqlite(target)
        shutil.copyfile(source, target)
        if Path(f"{source}-wal").exists():
            shutil.copyfile(f"{source}-wal", f"{target}-wal")
        try:
            yield f"sqlite:///{target}"
        finally:
            remove_sqlite(target)
        return
    wait_until_unused(dbname_of(url))
    with scratch_postgres(name, template=dbname_of(url)) as copy:
        yield copy


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_tasker(run: Run, url: str) -> Any:
    """A Tasker on ``url`` that knows this run's templates."""
    from tasker import Settings, Tasker, TemplateRegistry
    from tasker.store import open_database

    if str(run.workdir) not in sys.path:
        sys.path.insert(0, str(run.workdir))
    registry = TemplateRegistry.from_paths([str(run.templates_dir)])
    return Tasker(open_database(url), registry, settings=Settings(database_url=url))


def create_tasks(
    run: Run,
    url: str,
    template: str,
    count: int,
    context: Callable[[int], dict[str, Any]] | None = None,
) -> tuple[list[int], float]:
    """Create ``count`` tasks one request at a time; returns their ids and the seconds taken.
    ``context(i)`` is the context of the i-th task (none by default)."""
    from tasker import TaskRequest

    tasker = open_tasker(run, url)
    try:
        started = time.perf_counter()
        ids = [
            tasker.create_task(
                TaskRequest(template, namespace=NAMESPACE, context=context(i) if context else {})
            )[0]
            for i in range(count)
        ]
        return ids, time.perf_counter() - started
    finally:
        tasker.close()


# -- probes: read what happened from the database -----------------------------------------


class Probe:
    """Plain SQL against a Tasker database of either backend, for measuring only.

    Queries are written for PostgreSQL (schema ``tasker.``, ``%s`` parameters); on SQLite
    the schema prefix and parameter style are rewritten. Columns ending in ``_at`` come
    back as aware datetimes on both.
    """

    def __init__(self, url: str):
        self.url = url
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            self._sqlite = sqlite3.connect(url[len("sqlite:///") :], timeout=30)
        else:
            self._pg = psycopg.connect(url, autocommit=True, row_factory=dict_row)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if not self.sqlite:
            found = self._pg.execute(sql, params).fetchall()  # type: ignore[arg-type,unused-ignore]
            return [_times(dict(r)) for r in found]
        cursor = self._sqlite.execute(sql.replace("tasker.", "").replace("%s", "?"), params)
        names = [d[0] for d in cursor.description]
        return [_times(dict(zip(names, raw, strict=True))) for raw in cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any]:
        rows = self.rows(sql, params)
        return rows[0] if rows else {}

    def step_window(self, task_ids: Sequence[int] | None = None) -> dict[str, Any]:
        """Steps, completed steps, first start and last completion (of some tasks or all)."""
        where, params = "", []
        if task_ids is not None:
            marks = ",".join(["%s"] * len(task_ids))
            where, params = f"WHERE task_id IN ({marks})", list(task_ids)
        return self.one(
            "SELECT count(*) AS steps,"
            " count(*) FILTER (WHERE status = 'complete') AS completed,"
            " min(started_at) AS first_started_at, max(completed_at) AS last_completed_at"
            f" FROM tasker.steps {where}",
            params,
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A change made to set a scenario up (never to the work being measured)."""
        if self.sqlite:
            self._sqlite.execute(sql.replace("tasker.", "").replace("%s", "?"), params)
            self._sqlite.commit()
        else:
            self._pg.execute(sql, params)  # type: ignore[arg-type,unused-ignore]

    def task_status(self, task_id: int) -> str | None:
        return self.one("SELECT status FROM tasker.tasks WHERE id = %s", [task_id]).get("status")

    def close(self) -> None:
        if self.sqlite:
            self._sqlite.close()
        else:
            self._pg.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _times(row: dict[str, Any]) -> dict[str, Any]:
    for name, value in row.items():
        if name.endswith("_at") and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            row[name] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return row


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def wait_for(predicate: Any, timeout_seconds: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")


# -- statistics ------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "min": min(values) if values else None,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return percentile(present, 50) if present else None


def rounded(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value
