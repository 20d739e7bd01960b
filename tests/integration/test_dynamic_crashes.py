"""Dynamic workflows under crashes and races: a map's expansion is all or nothing (a
failure mid-expansion, and workers killed with kill -9 while maps expand), and two
senders racing on one signal deliver it once."""

from __future__ import annotations

import os
import random
import signal
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tasker import FakeClock, Settings, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine import attempts, maps
from tasker.engine.attempts import Outcome
from tasker.exceptions import SignalConflict
from tasker.runtime.runner import run_until_final
from tasker.store import open_database
from tasker.store.database import Database

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_workers import start_worker, wait_for  # noqa: E402


def fan(items: int) -> Template:
    tpl = Template("fan")

    @tpl.step()
    def source(step: Any) -> dict[str, Any]:
        return {"items": list(range(items))}

    @tpl.step(depends_on=[source], map="source.items")
    def each(step: Any) -> int:
        return int(step.item) * 2

    @tpl.step(depends_on=[each])
    def total(step: Any) -> int:
        return sum(step.results["each"])

    return tpl


def test_a_failure_mid_expansion_leaves_no_instance_and_a_retry_makes_one_set(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a map over five items whose source step has just run
    registry = TemplateRegistry()
    registry.add(fan(5))
    tasker = Tasker(database, registry, clock=FakeClock())
    task_id, _ = tasker.create_task(TaskRequest("fan", {}))
    (claim,) = tasker.claim("w", 1, task_id=task_id)
    outcome = Outcome(claim.step_id, task_id, claim.claim_token, results={"items": [1, 2, 3, 4, 5]})
    # When recording it fails after some instances were written (the third one's history)
    real_change = maps.Change

    def failing_change(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("step_name") == "each[2]":
            raise RuntimeError("crash in the middle of the expansion")
        return real_change(*args, **kwargs)

    monkeypatch.setattr(maps, "Change", failing_change)
    with pytest.raises(RuntimeError, match="middle of the expansion"):
        tasker.write(lambda c: attempts.record_outcomes(c, [outcome], now=tasker.now()))
    # Then nothing of it is stored: no instance, the source still running
    names = [s["name"] for s in tasker.get_task(task_id)["steps"]]
    assert names == ["source", "each", "total"]
    assert tasker.get_task(task_id)["steps"][0]["status"] == "in_progress"
    # When the outcome is recorded again, Then exactly one set of instances exists
    monkeypatch.setattr(maps, "Change", real_change)
    tasker.record([outcome])
    assert run_until_final(tasker, task_id) == "complete"
    steps = tasker.get_task(task_id)["steps"]
    assert [s["name"] for s in steps if s["group"]] == [f"each[{i}]" for i in range(5)]
    assert steps[-1]["results"] == 30


def test_two_senders_racing_on_one_signal_deliver_it_once(database: Database) -> None:
    # Given a task waiting for a signal, and eight threads each with its own connection
    tpl = Template("gate")
    tpl.add_step("opened", None, wait_for="open")
    registry = TemplateRegistry()
    registry.add(tpl)
    tasker = Tasker(database, registry)
    task_id, _ = tasker.create_task(TaskRequest("gate", {}))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def send(payload: Any) -> None:
        with Tasker(open_database(database.url), registry) as mine:
            barrier.wait()
            try:
                receipt = mine.signal_task(task_id, "open", payload)
                outcomes.append("created" if receipt.created else "same")
            except SignalConflict:
                outcomes.append("conflict")

    # When four send one payload and four another, all at once
    threads = [threading.Thread(target=send, args=({"v": i % 2},)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then exactly one was delivered; the same payload again was a no-op, the other a conflict
    counts = Counter(outcomes)
    assert counts["created"] == 1
    assert counts["same"] == 3 and counts["conflict"] == 4
    task = tasker.get_task(task_id)
    assert task["status"] == "complete"
    events = [e["name"] for e in tasker.events(task_id=task_id)]
    assert events.count("step.signal_received") == 1
    assert events.count("step.completed") == 1


HANDLERS = textwrap.dedent(
    """
    import time

    def source(step):
        return {"items": list(range(step.context["n"]))}

    def each(step):
        time.sleep(0.001)
        return step.item

    def total(step):
        return len(step.results["each"])
    """
)


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_killed_while_maps_expand_leave_exactly_one_set_each(
    postgres_url: str, tmp_path: Path
) -> None:
    # Given 6 tasks that each map over 400 items, on PostgreSQL
    (tmp_path / "map_handlers.py").write_text(HANDLERS)
    templates = tmp_path / "templates"
    templates.mkdir()
    template = {
        "name": "big_fan",
        "defaults": {"backoff": {"base_seconds": 0.05, "jitter": 0}, "max_attempts": 10},
        "steps": [
            {"name": "source", "handler": "map_handlers:source"},
            {"name": "each", "handler": "map_handlers:each", "depends_on": ["source"],
             "map": "source.items"},
            {"name": "total", "handler": "map_handlers:total", "depends_on": ["each"]},
        ],
    }  # fmt: skip
    (templates / "big_fan.yaml").write_text(yaml.safe_dump(template))
    src = str(Path(__file__).parents[2] / "src")
    env = {
        **os.environ,
        "TASKER_DATABASE_URL": postgres_url,
        "TASKER_TEMPLATES": str(templates),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
    }
    sys.path.insert(0, str(tmp_path))
    tasker = Tasker.from_settings(Settings.from_env(env))
    task_ids = [tasker.create_task(TaskRequest("big_fan", {"n": 400}))[0] for _ in range(6)]
    # When two workers run them and are killed with kill -9 at random moments, 6 times
    rng = random.Random(7)
    workers = [start_worker(env, lease=2, burst=False) for _ in range(2)]
    for _ in range(6):
        time.sleep(rng.uniform(0.2, 0.8))
        victim = rng.randrange(len(workers))
        os.kill(workers[victim].pid, signal.SIGKILL)
        workers[victim].communicate(timeout=10)  # reaps it and closes its pipes
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
    # Then each task has exactly one set of 400 instances, and its fan-in saw all of them
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT task_id, count(*), count(DISTINCT map_index) FROM tasker.steps"
            " WHERE group_id IS NOT NULL GROUP BY task_id ORDER BY task_id"
        ).fetchall()
    assert rows == [(t, 400, 400) for t in task_ids]
    for task_id in task_ids:
        steps = {s["name"]: s for s in tasker.get_task(task_id)["steps"]}
        assert steps["total"]["results"] == 400
        assert steps["each"]["instances"] == {"total": 400, "complete": 400}
    tasker.close()
