"""Tasker behind PgBouncer in transaction pooling (Debian's ``pgbouncer``, started here):
``TASKER_PGBOUNCER=on`` turns prepared statements off, and ``TASKER_LISTEN_URL`` takes
the LISTEN connection straight to PostgreSQL (without it, workers poll)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from pgbouncer import pgbouncer
from tasker import Settings, Tasker, TaskRequest
from tasker.config import PoolerSettings
from tasker.exceptions import ConfigurationError, StoreError
from tasker.store.postgres import PostgresDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HERE = Path(__file__).parent


@pytest.fixture
def pooled_url(postgres_url: str) -> Iterator[str]:
    with pgbouncer(postgres_url, server_connections=2) as url:
        yield url


def health(db: PostgresDatabase) -> None:
    # In a transaction that commits, as the worker's (and its reads) do: psycopg forgets
    # what it prepared at a ROLLBACK.
    with db.transaction() as conn:
        conn.fetch_one("get_system_health_counts", now=datetime.now(UTC))


def switch_sessions(pooled_url: str, db: PostgresDatabase) -> None:
    """Run a query often enough for psycopg to prepare it (5 times), then make the next
    transaction land on the other server session: another client holds, in an open
    transaction, the session the first one used last (PgBouncer hands out the most
    recently used idle session first)."""
    for _ in range(6):
        health(db)
    with psycopg.connect(pooled_url) as other:
        other.execute("SELECT 1")  # holds a server session until this block ends
        health(db)


def test_without_the_setting_a_prepared_statement_is_lost_between_sessions(
    pooled_url: str,
) -> None:
    # Given Tasker talking through PgBouncer as if to PostgreSQL itself
    db = PostgresDatabase(pooled_url, max_size=1, pooler=PoolerSettings(pgbouncer=False))
    try:
        # When a prepared query's next transaction runs on another server session
        # Then it fails: the statement was prepared on the first session only
        with pytest.raises(StoreError, match=r"prepared statement .* does not exist"):
            switch_sessions(pooled_url, db)
    finally:
        db.close()


def test_with_pgbouncer_on_queries_survive_switching_sessions(pooled_url: str) -> None:
    # Given TASKER_PGBOUNCER=on
    db = PostgresDatabase(pooled_url, max_size=1, pooler=PoolerSettings(pgbouncer=True))
    try:
        # When the same queries run across server sessions, then nothing fails
        switch_sessions(pooled_url, db)
        for _ in range(20):
            health(db)
    finally:
        db.close()


def test_listen_goes_straight_to_postgres_and_a_notify_through_the_pooler_wakes_it(
    pooled_url: str, postgres_url: str
) -> None:
    # Given a database behind PgBouncer, listening on the direct URL
    pooler = PoolerSettings(pgbouncer=True, listen_url=postgres_url)
    db = PostgresDatabase(pooled_url, pooler=pooler)
    try:
        assert db.supports_notify
        woken: list[bool] = []
        listener = threading.Thread(target=lambda: woken.append(db.listen("tasker_steps", 10)))
        listener.start()
        # When a NOTIFY is sent through the pooler (once the listener is listening)
        deadline = datetime.now(UTC).timestamp() + 10
        while not woken and datetime.now(UTC).timestamp() < deadline:
            db.notify("tasker_steps")
            listener.join(0.2)
        # Then the listener wakes
        assert woken == [True]
    finally:
        db.close()


def test_with_pgbouncer_on_and_no_direct_url_there_is_no_listen(pooled_url: str) -> None:
    db = PostgresDatabase(pooled_url, pooler=PoolerSettings(pgbouncer=True))
    try:
        # Then workers poll: LISTEN through a transaction pooler would be lost
        assert not db.supports_notify
        assert db.listen("tasker_steps", 0.05) is False
    finally:
        db.close()


def test_the_settings_are_read_from_the_environment_and_bad_ones_refused() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    assert PoolerSettings.from_env({}) == PoolerSettings(False, None)
    env = {"TASKER_PGBOUNCER": "on", "TASKER_LISTEN_URL": url}
    assert PoolerSettings.from_env(env) == PoolerSettings(True, url)
    with pytest.raises(ConfigurationError, match="TASKER_PGBOUNCER must be 'on' or 'off'"):
        PoolerSettings.from_env({"TASKER_PGBOUNCER": "transaction"})
    with pytest.raises(ConfigurationError, match="TASKER_LISTEN_URL must be a postgresql://"):
        PoolerSettings.from_env({"TASKER_LISTEN_URL": "sqlite:///x.db"})


HANDLERS = textwrap.dedent(
    """
    import os
    import psycopg

    def record(step):
        with psycopg.connect(os.environ["SIDE_TABLE_URL"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO public.executions (step_id, pid) VALUES (%s, %s)",
                (step.step_id, os.getpid()),
            )
        return {"pid": os.getpid()}
    """
)


def test_two_worker_processes_through_pgbouncer_run_every_step_exactly_once(
    pooled_url: str, postgres_url: str, tmp_path: Path
) -> None:
    # Given 15 diamond tasks and a 100-wide fan-out, and two workers that reach the
    # database only through PgBouncer (LISTEN excepted), with two server sessions
    (tmp_path / "side_handlers.py").write_text(HANDLERS)
    step = {"handler": "side_handlers:record"}
    template = {
        "name": "through_pgbouncer",
        "steps": [
            {"name": "a", **step},
            {"name": "b", "depends_on": ["a"], **step},
            {"name": "c", "depends_on": ["a"], **step},
            {"name": "d", "depends_on": ["b", "c"], **step},
        ],
    }
    wide = {
        "name": "wide",
        "steps": [{"name": "start", **step}]
        + [{"name": f"leaf_{i}", "depends_on": ["start"], **step} for i in range(100)],
    }
    templates = tmp_path / "templates"
    templates.mkdir()
    for t in (template, wide):
        (templates / f"{t['name']}.yaml").write_text(yaml.safe_dump(t))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.executions (step_id bigint, pid int)")
    src = str(Path(__file__).parents[2] / "src")
    env = {
        **os.environ,
        "TASKER_DATABASE_URL": pooled_url,
        "TASKER_PGBOUNCER": "on",
        "TASKER_LISTEN_URL": postgres_url,
        "TASKER_TEMPLATES": str(templates),
        "SIDE_TABLE_URL": postgres_url,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
    }
    sys.path.insert(0, str(tmp_path))
    with Tasker.from_settings(Settings.from_env(env)) as tasker:
        task_ids = [tasker.create_task(TaskRequest("through_pgbouncer"))[0] for _ in range(15)]
        task_ids.append(tasker.create_task(TaskRequest("wide"))[0])

    # When two worker processes drain them
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "worker_process.py"), "8", "30", "1", "5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        errors = [worker.communicate(timeout=120)[1] for worker in workers]
    finally:  # a failed or hung run must not leave a worker behind
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for worker, err in zip(workers, errors, strict=True):
        assert worker.returncode == 0, err
        assert "prepared statement" not in err, err

    # Then every task completed and every step ran exactly once
    with Tasker.from_settings(Settings.from_env(env)) as tasker:
        assert {tasker.task_status(t) for t in task_ids} == {"complete"}
    with psycopg.connect(postgres_url) as conn:
        ran = conn.execute("SELECT step_id FROM public.executions").fetchall()
    assert len(ran) == len({s for (s,) in ran}) == 15 * 4 + 101
