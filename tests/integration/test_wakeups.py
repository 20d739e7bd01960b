"""Idle workers are woken by new work, on both backends (issue 16, item 4).

PostgreSQL has LISTEN/NOTIFY. SQLite has no notifications, so its store makes them: a
commit in the same process that made steps ready wakes listeners at once, and a commit
by another process is seen in ``PRAGMA data_version``. These tests check who is woken
and who is not; how fast is the latency benchmark's business (``python -m benchmarks
--only latency``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from tasker import Settings, Tasker, TaskRequest
from tasker.definitions import TemplateRegistry, parse_template
from tasker.store import open_database
from tasker.store.database import Database

SRC = Path(__file__).resolve().parents[2] / "src"
CHANNEL = "tasker_steps"
TEMPLATE = {"name": "wake", "steps": [{"name": "only", "handler": "tasker.builtin_handlers:noop"}]}


def tasker_on(database: Database) -> Tasker:
    registry = TemplateRegistry()
    registry.add(parse_template(TEMPLATE))
    return Tasker(database, registry, settings=Settings(database_url=database.url))


def test_a_task_created_by_another_process_wakes_a_listener(db_url: str, tmp_path: Path) -> None:
    # Given a listening database handle, listening already (PostgreSQL LISTENs on the
    # first call; SQLite notes the file's data version)
    listener = open_database(db_url)
    try:
        assert listener.supports_notify
        listener.listen(CHANNEL, 0.01)
        # When another process creates a task through the CLI
        (tmp_path / "wake.yaml").write_text(yaml.safe_dump(TEMPLATE))
        env = {
            **os.environ,
            "TASKER_DATABASE_URL": db_url,
            "TASKER_TEMPLATES": str(tmp_path / "wake.yaml"),
            "PYTHONPATH": str(SRC),
        }
        created = subprocess.run(
            [sys.executable, "-m", "tasker", "task", "create", "wake", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["id"] > 0
        # Then the listener is woken (well before its timeout)
        assert listener.listen(CHANNEL, 30.0) is True
    finally:
        listener.close()


def test_a_task_created_in_the_same_process_wakes_a_listener(database: Database) -> None:
    # Given a listener on the handle a Tasker in this process writes through
    tasker = tasker_on(database)
    database.listen(CHANNEL, 0.01)
    woken: list[bool] = []
    listening = threading.Thread(target=lambda: woken.append(database.listen(CHANNEL, 30.0)))
    listening.start()
    # When the process creates a task
    tasker.create_task(TaskRequest("wake"))
    listening.join(60)
    # Then the listener was woken
    assert woken == [True]


def test_nothing_new_wakes_no_one(database: Database) -> None:
    # Given a listener and a Tasker on the same handle
    tasker = tasker_on(database)
    task_id, _ = tasker.create_task(TaskRequest("wake"))
    database.listen(CHANNEL, 0.01)
    # When only a read and a commit that makes no step ready happen
    tasker.get_task(task_id)
    with database.transaction():
        pass
    # Then a short listen times out
    assert database.listen(CHANNEL, 0.2) is False
