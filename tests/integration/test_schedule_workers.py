"""Schedules fired by real worker processes (issue 14), on both backends: three workers
racing over the same ticks, kill -9 of the worker that is firing, a restart after
downtime. Each tick must make exactly one task; the idempotency keys say which tick.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tasker import Settings, Tasker
from tasker.definitions.schedule import ScheduleSpec, next_tick
from tasker.store.sqlite import format_time

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
CRON = "* * * * *"


def template(steps: int) -> dict[str, Any]:
    return {
        "namespace": "cron",
        "name": "minutely",
        "schedules": [{"name": "every_minute", "cron": CRON, "catchup": "all"}],
        "steps": [
            {"name": f"s{i}", "handler": "tasker.builtin_handlers:noop"} for i in range(steps)
        ],
    }


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "minutely.yaml").write_text(yaml.safe_dump(template(60)))
    src = str(Path(__file__).parents[2] / "src")
    yield {
        **os.environ,
        "TASKER_DATABASE_URL": db_url,
        "TASKER_TEMPLATES": str(templates),
        "PYTHONPATH": src,
    }


def library(env: dict[str, str]) -> Tasker:
    return Tasker.from_settings(Settings.from_env(env))


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    """A worker process (CONCURRENCY LEASE BURST GRACE: tests/integration/worker_process.py)
    whose stderr goes to a file beside the templates (checked for tracebacks by ``stop``)."""
    logs = Path(env["TASKER_TEMPLATES"]).parent
    with (logs / f"worker-{len(list(logs.glob('worker-*')))}.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, str(HERE / "worker_process.py"), "8", "30", "0", "5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def stop(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def rewind(url: str, minutes: int) -> list[datetime]:
    """As if every worker had been down: the schedule last fired ``minutes`` minutes ago.
    Returns the ticks now missed, oldest first."""
    now = datetime.now(UTC)
    last = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes) + timedelta(seconds=1)
    first = next_tick(ScheduleSpec("every_minute", CRON), last)
    if url.startswith("sqlite:"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            conn.execute(
                "UPDATE schedules SET last_tick_at = ?, next_tick_at = ?",
                (format_time(last), format_time(first)),
            )
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE tasker.schedules SET last_tick_at = %s, next_tick_at = %s", (last, first)
            )
    return [first + timedelta(minutes=i) for i in range(minutes)]


CATCHUP_CAP = 100  # catchup: all fires at most the latest 100 missed ticks


def tick_keys(tasker: Tasker) -> list[str]:
    tasks = tasker.list_tasks(namespace="cron", limit=1000)
    return [t["idempotency_key"] for t in tasks]


def fired_events(tasker: Tasker) -> int:
    # By name: the workers also run the tasks' steps, whose events may number over 10,000
    return len(tasker.event_page(name="schedule.fired", limit=10_000))


def key(tick: datetime) -> str:
    return f"schedule:cron/minutely:every_minute:{tick:%Y-%m-%dT%H:%M:%S}Z"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def worker_tracebacks(env: dict[str, str]) -> list[str]:
    logs = sorted(Path(env["TASKER_TEMPLATES"]).parent.glob("worker-*.log"))
    return [log.read_text() for log in logs if "Traceback" in log.read_text()]


def check_exactly_once(tasker: Tasker, missed: list[datetime]) -> None:
    keys = tick_keys(tasker)
    assert len(keys) == len(set(keys)), sorted(keys)  # no tick made two tasks
    # Every missed tick made one, except those that fell out of catch-up's latest 100
    # when the clock passed a minute boundary before the firing (a new tick came due)
    newest = max(datetime.strptime(k.rsplit(":every_minute:", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
                 for k in keys).replace(tzinfo=UTC)  # fmt: skip
    assert newest >= missed[-1], (newest, missed[-1])
    oldest_kept = newest - timedelta(minutes=CATCHUP_CAP - 1)
    assert {key(t) for t in missed if t >= oldest_kept} <= set(keys)
    assert fired_events(tasker) == len(keys)  # one event per tick fired


def test_three_workers_racing_fire_each_missed_tick_once(env: dict[str, str]) -> None:
    # Given a minutely schedule whose last 40 ticks were missed
    tasker = library(env)
    try:
        tasker.sync_schedules()
        missed = rewind(env["TASKER_DATABASE_URL"], 40)
        # When three workers start at once and race to fire them
        workers = [start_worker(env) for _ in range(3)]
        try:
            wait_for(lambda: len(tick_keys(tasker)) >= 40, 90, "40 scheduled tasks")
            time.sleep(2)  # more rounds of the three racing: nothing may fire twice
        finally:
            stop(workers)
        # Then each tick made exactly one task
        check_exactly_once(tasker, missed)
        assert worker_tracebacks(env) == []
    finally:
        tasker.close()


def test_kill_9_of_firing_workers_loses_and_doubles_no_tick(env: dict[str, str]) -> None:
    # Given 100 missed ticks of a 60-step template: one firing transaction takes seconds
    tasker = library(env)
    try:
        tasker.sync_schedules()
        missed = rewind(env["TASKER_DATABASE_URL"], 100)
        # When workers are killed with SIGKILL at varied moments of their start and firing
        for delay in (2.0, 2.6, 3.2):
            victim = start_worker(env)
            time.sleep(delay)
            victim.kill()
            victim.wait()
        # And two workers start again afterwards
        workers = [start_worker(env) for _ in range(2)]
        try:
            wait_for(lambda: len(tick_keys(tasker)) >= 100, 120, "100 scheduled tasks")
            time.sleep(2)
        finally:
            stop(workers)
        # Then every tick has exactly one task, whatever the kills interrupted
        check_exactly_once(tasker, missed)
        assert worker_tracebacks(env) == []
    finally:
        tasker.close()


@pytest.mark.postgres
def test_a_worker_killed_in_the_middle_of_a_tick_leaves_it_to_the_next(
    env: dict[str, str],
) -> None:
    if not env["TASKER_DATABASE_URL"].startswith("postgresql"):
        pytest.skip("PostgreSQL: a lock held by the test stops the worker mid-tick")
    tasker = library(env)
    try:
        tasker.sync_schedules()
        missed = rewind(env["TASKER_DATABASE_URL"], 10)
        with psycopg.connect(env["TASKER_DATABASE_URL"]) as blocker:
            # Given a worker stopped in the middle of firing: the test holds a lock that
            # its INSERT of the first tick's task waits for
            blocker.execute("LOCK TABLE tasker.tasks IN SHARE MODE")
            victim = start_worker(env)
            wait_for(lambda: inserting(env["TASKER_DATABASE_URL"]), 30, "the firing INSERT to wait")
            # When it is killed there (its transaction holds the firing lock) and another
            # worker is started
            victim.kill()
            victim.wait()
            survivor = start_worker(env)
            blocker.rollback()  # the killed worker's transaction rolls back
        try:
            wait_for(lambda: len(tick_keys(tasker)) >= 10, 60, "10 scheduled tasks")
            time.sleep(2)
        finally:
            stop([survivor])
        # Then the survivor fired every tick, each once
        check_exactly_once(tasker, missed)
        assert worker_tracebacks(env) == []
    finally:
        tasker.close()


def inserting(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO tasker.tasks %%'"
        ).fetchone()
    return bool(row and row[0])
