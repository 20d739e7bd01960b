"""Child workflows under races and crashes: a step starts exactly one child task, when
reports of its handler race, when a second child is forced on it, and when workers are
killed with kill -9 while children are being created."""

from __future__ import annotations

import os
import random
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tasker import FakeClock, Settings, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine import creation
from tasker.engine.attempts import Outcome
from tasker.exceptions import DuplicateKey
from tasker.runtime.runner import run_until_final
from tasker.store import open_database
from tasker.store.database import Database

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_workers import start_worker, wait_for  # noqa: E402


def templates() -> tuple[Template, Template]:
    child = Template("child", namespace="kids")

    @child.step()
    def work(step: Any) -> dict[str, Any]:
        return {"got": dict(step.context)}

    parent = Template("parent", namespace="kids")

    @parent.step(workflow={"namespace": "kids", "name": "child"})
    def make_context(step: Any) -> dict[str, Any]:
        return {"n": 1}

    return child, parent


def test_racing_reports_of_one_handler_start_one_child(database: Database) -> None:
    # Given a workflow step whose handler ran, and eight threads each with its own
    # connection about to report the same outcome at once
    registry = TemplateRegistry()
    for template in templates():
        registry.add(template)
    tasker = Tasker(database, registry, clock=FakeClock())
    task_id, _ = tasker.create_task(TaskRequest("parent", {}, namespace="kids"))
    (claim,) = tasker.claim("w", 1, task_id=task_id)
    outcome = Outcome(claim.step_id, task_id, claim.claim_token, results={"n": 1})
    barrier = threading.Barrier(8)
    recorded: list[list[int]] = []

    def report() -> None:
        with Tasker(open_database(database.url), registry, clock=FakeClock()) as mine:
            barrier.wait()
            recorded.append(mine.record([outcome], "w").recorded)

    # When they all report
    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Then one report was taken, the others refused as stale, and one child exists
    assert sorted(len(r) for r in recorded) == [0] * 7 + [1]
    assert len(tasker.children_of(task_id)) == 1
    assert run_until_final(tasker, task_id) == "complete"
    assert len(tasker.children_of(task_id)) == 1


def test_a_second_child_for_the_same_step_is_refused_by_the_database(
    database: Database,
) -> None:
    # Given a step that started its child
    registry = TemplateRegistry()
    child, parent = templates()
    for template in (child, parent):
        registry.add(template)
    tasker = Tasker(database, registry, clock=FakeClock())
    task_id, _ = tasker.create_task(TaskRequest("parent", {}, namespace="kids"))
    (claim,) = tasker.claim("w", 1, task_id=task_id)
    tasker.record([Outcome(claim.step_id, task_id, claim.claim_token, results={"n": 1})])
    definition = registry.get("child", "kids")

    # When anything tries to create another child for it
    def second(conn: Any) -> Any:
        return creation.insert_task(
            conn,
            definition,
            TaskRequest("child", {}, namespace="kids"),
            tasker.now(),
            parent=(task_id, claim.step_id),
        )

    # Then the unique index refuses it, and still one child exists
    with pytest.raises(DuplicateKey):
        tasker.write(second)
    assert len(tasker.children_of(task_id)) == 1


HANDLERS = textwrap.dedent(
    """
    import time

    def source(step):
        return {"items": [{"i": i} for i in range(step.context["n"])]}

    def work(step):
        time.sleep(0.002)
        return step.context["i"]
    """
)


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_killed_while_children_start_leave_one_child_per_step(
    postgres_url: str, tmp_path: Path
) -> None:
    # Given 4 tasks that each start a child task per item of a 60-item list, on PostgreSQL
    (tmp_path / "kid_handlers.py").write_text(HANDLERS)
    folder = tmp_path / "templates"
    folder.mkdir()
    parent = {
        "namespace": "kids",
        "name": "fanout",
        "defaults": {"backoff": {"base_seconds": 0.05, "jitter": 0}, "max_attempts": 10},
        "steps": [
            {"name": "source", "handler": "kid_handlers:source"},
            {"name": "each", "depends_on": ["source"], "map": "source.items",
             "workflow": {"namespace": "kids", "name": "leaf"}},
        ],
    }  # fmt: skip
    leaf = {
        "namespace": "kids",
        "name": "leaf",
        "defaults": {"backoff": {"base_seconds": 0.05, "jitter": 0}, "max_attempts": 10},
        "steps": [{"name": "work", "handler": "kid_handlers:work"}],
    }
    (folder / "fanout.yaml").write_text(yaml.safe_dump(parent))
    (folder / "leaf.yaml").write_text(yaml.safe_dump(leaf))
    src = str(Path(__file__).parents[2] / "src")
    env = {
        **os.environ,
        "TASKER_DATABASE_URL": postgres_url,
        "TASKER_TEMPLATES": str(folder),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
    }
    sys.path.insert(0, str(tmp_path))
    tasker = Tasker.from_settings(Settings.from_env(env))
    task_ids = [
        tasker.create_task(TaskRequest("fanout", {"n": 60}, namespace="kids"))[0] for _ in range(4)
    ]
    # When two workers run them and are killed with kill -9 at random moments, 5 times
    rng = random.Random(11)
    workers = [start_worker(env, lease=2, burst=False) for _ in range(2)]
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 0.8))
        victim = rng.randrange(len(workers))
        os.kill(workers[victim].pid, signal.SIGKILL)
        workers[victim].communicate(timeout=10)
        workers[victim] = start_worker(env, lease=2, burst=False)
    try:
        wait_for(
            lambda: all(tasker.task_status(t) == "complete" for t in task_ids),
            240,
            "every task to complete",
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.communicate(timeout=30)
    # Then every instance step started exactly one child, and the group saw all results
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT s.task_id, count(*), count(DISTINCT c.id) FROM tasker.steps s"
            " JOIN tasker.tasks c ON c.parent_step_id = s.id"
            " WHERE s.group_id IS NOT NULL GROUP BY s.task_id ORDER BY s.task_id"
        ).fetchall()
    assert rows == [(t, 60, 60) for t in task_ids]
    for task_id in task_ids:
        steps = {s["name"]: s for s in tasker.get_task(task_id)["steps"]}
        assert [r["work"] for r in steps["each"]["results"]] == list(range(60))
    tasker.close()
