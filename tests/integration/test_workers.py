"""Workers as real processes on PostgreSQL: many at once, `kill -9`, SIGTERM.

Handlers record every successful execution in a side table of the same database,
so "exactly once" is checked against what actually ran, not against Tasker's own
bookkeeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from postgres_restart import restart_postgres, restartable_postgres
from tasker import Settings, Tasker, TaskRequest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HERE = Path(__file__).parent

HANDLERS = textwrap.dedent(
    """
    import os, time
    import psycopg

    def record(step):
        time.sleep(step.config.get("sleep_seconds", 0))
        with psycopg.connect(os.environ["TASKER_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO public.executions (step_id, attempt, pid) VALUES (%s, %s, %s)",
                (step.step_id, step.attempt, os.getpid()),
            )
        return {"pid": os.getpid(), "parents": sorted(step.results)}
    """
)


def tree_template() -> dict[str, Any]:
    edges = {
        "root": [],
        "l": ["root"],
        "r": ["root"],
        "ll": ["l"],
        "lr": ["l"],
        "rl": ["r"],
        "rr": ["r"],
        "join": ["ll", "lr", "rl", "rr"],
    }
    return {
        "name": "tree",
        "defaults": {"backoff": {"base_seconds": 0.05, "jitter": 0}},
        "steps": [
            {"name": n, "handler": "side_handlers:record", "depends_on": d}
            for n, d in edges.items()
        ],
    }


def fan_out_template(width: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"name": "start", "handler": "side_handlers:record"}]
    steps += [
        {"name": f"leaf_{i}", "handler": "side_handlers:record", "depends_on": ["start"]}
        for i in range(width)
    ]
    steps.append(
        {
            "name": "merge",
            "handler": "side_handlers:record",
            "depends_on": [f"leaf_{i}" for i in range(width)],
        }
    )
    return {"name": "fan_out", "steps": steps}


def sleeper_template(seconds: float, count: int) -> dict[str, Any]:
    return {
        "name": "sleepers",
        "defaults": {"backoff": {"base_seconds": 0.05, "max_seconds": 0.1, "jitter": 0}},
        "steps": [
            {
                "name": f"s{i}",
                "handler": "side_handlers:record",
                "config": {"sleep_seconds": seconds},
            }
            for i in range(count)
        ],
    }


@pytest.fixture
def env(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "side_handlers.py").write_text(HANDLERS)
    templates = tmp_path / "templates"
    templates.mkdir()
    for template in (
        tree_template(),
        fan_out_template(200),
        sleeper_template(3.0, 1),
        sleeper_template(1.0, 6) | {"name": "short_sleepers"},
    ):
        (templates / f"{template['name']}.yaml").write_text(yaml.safe_dump(template))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.executions (step_id bigint, attempt int, pid int)")
    src = str(Path(__file__).parents[2] / "src")
    yield {
        **os.environ,
        "TASKER_DATABASE_URL": postgres_url,
        "TASKER_TEMPLATES": str(templates),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
    }


def tasker_for(env: dict[str, str]) -> Tasker:
    sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
    return Tasker.from_settings(Settings.from_env(env))


def start_worker(
    env: dict[str, str],
    *,
    concurrency: int = 8,
    lease: float = 30,
    burst: bool = True,
    grace: float = 10,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "worker_process.py"),
            str(concurrency),
            str(lease),
            "1" if burst else "0",
            str(grace),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def executions(url: str) -> list[tuple[int, int, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT step_id, attempt, pid FROM public.executions").fetchall()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_worker_processes_run_every_step_exactly_once(env: dict[str, str]) -> None:
    # Given 20 tree tasks (8 steps) and one 202-step fan-out/fan-in
    with tasker_for(env) as tasker:
        task_ids = [tasker.create_task(TaskRequest("tree"))[0] for _ in range(20)]
        task_ids.append(tasker.create_task(TaskRequest("fan_out"))[0])
    # When three worker processes drain them
    workers = [start_worker(env, concurrency=8) for _ in range(3)]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    # Then every task completed, every step ran exactly once, and more than one process worked
    with tasker_for(env) as tasker:
        assert {tasker.task_status(t) for t in task_ids} == {"complete"}
        total_steps = sum(len(tasker.get_task(t)["steps"]) for t in task_ids)
        events = tasker.events(limit=100_000)
    ran = executions(env["TASKER_DATABASE_URL"])
    assert total_steps == 20 * 8 + 202
    assert len(ran) == total_steps
    assert len({step_id for step_id, _, _ in ran}) == total_steps
    assert len({pid for _, _, pid in ran}) > 1
    completed = [e["step_id"] for e in events if e["name"] == "step.completed"]
    assert len(completed) == len(set(completed)) == total_steps
    finalized = [e["task_id"] for e in events if e["name"] == "task.completed"]
    assert sorted(finalized) == sorted(task_ids)


def test_kill_9_mid_step_is_recovered_after_the_lease_and_completes_once(
    env: dict[str, str],
) -> None:
    url = env["TASKER_DATABASE_URL"]
    with tasker_for(env) as tasker:
        task_id, _ = tasker.create_task(TaskRequest("sleepers"))
    # Given worker A running the 3-second step with a 2-second lease
    victim = start_worker(env, concurrency=1, lease=2, burst=False)

    def held() -> bool:
        with tasker_for(env) as t:
            return t.get_task(task_id)["steps"][0]["status"] == "in_progress"

    wait_for(held, 20, "worker A to claim the step")
    # When A is killed with SIGKILL mid-step
    victim.kill()
    victim.communicate(timeout=10)
    killed_at = time.monotonic()
    # Then worker B returns the step to the queue after the lease and runs it again
    rescuer = start_worker(env, concurrency=1, lease=2, burst=True)
    _out, err = rescuer.communicate(timeout=60)
    assert rescuer.returncode == 0, err
    assert time.monotonic() - killed_at < 30
    with tasker_for(env) as tasker:
        task = tasker.get_task(task_id)
        events = tasker.events(task_id=task_id)
    step = task["steps"][0]
    assert (task["status"], step["status"], step["attempts"]) == ("complete", "complete", 2)
    ran = executions(url)
    assert [(attempt) for _, attempt, _ in ran] == [2]  # the killed attempt never finished
    names = [e["name"] for e in events]
    # the crash left no gap or duplicate: one state event per history row
    with tasker_for(env) as tasker:
        changes = [t for t in tasker.transitions(task_id) if t["from_state"] is not None]
    state_events = [n for n in names if n.startswith(("task.", "step."))]
    assert len(state_events) == len(changes)
    assert len({e["id"] for e in events}) == len(events)
    assert names.count("step.completed") == 1
    assert names.count("workflow.step_lease_expired") == 1
    assert names.count("step.retry_scheduled") == 1


def test_sigterm_lets_in_flight_steps_finish_and_loses_nothing(env: dict[str, str]) -> None:
    url = env["TASKER_DATABASE_URL"]
    with tasker_for(env) as tasker:
        task_ids = [tasker.create_task(TaskRequest("short_sleepers"))[0] for _ in range(2)]
    worker = start_worker(env, concurrency=4, burst=False, grace=10)
    wait_for(
        lambda: len(executions(url)) >= 1 or _running(env, task_ids) >= 4, 20, "steps to be running"
    )
    # When the worker gets SIGTERM while steps are in flight
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    finished_by_first = len(executions(url))
    assert finished_by_first >= 4  # in-flight steps were allowed to finish
    with tasker_for(env) as tasker:
        statuses = [s["status"] for t in task_ids for s in tasker.get_task(t)["steps"]]
    assert "in_progress" not in statuses  # nothing left held by the stopped worker
    # Then a second worker finishes the rest, and no step ran twice
    rest = start_worker(env, concurrency=8, burst=True)
    rest.communicate(timeout=60)
    ran = executions(url)
    assert len(ran) == 12 and len({s for s, _, _ in ran}) == 12
    with tasker_for(env) as tasker:
        assert {tasker.task_status(t) for t in task_ids} == {"complete"}


def _running(env: dict[str, str], task_ids: list[int]) -> int:
    with tasker_for(env) as tasker:
        return sum(
            s["status"] == "in_progress" for t in task_ids for s in tasker.get_task(t)["steps"]
        )


@restartable_postgres
def test_a_database_restart_mid_run_loses_and_duplicates_nothing(env: dict[str, str]) -> None:
    url = env["TASKER_DATABASE_URL"]
    with tasker_for(env) as tasker:
        task_ids = [tasker.create_task(TaskRequest("short_sleepers"))[0] for _ in range(3)]
    worker = start_worker(env, concurrency=4, lease=5, burst=True)
    wait_for(lambda: len(executions(url)) >= 2, 30, "some steps to finish")
    # When PostgreSQL restarts while steps are running (connections are cut)
    restart_postgres()
    # Then the worker reconnects and finishes everything, each step exactly once
    _out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    with tasker_for(env) as tasker:
        assert {tasker.task_status(t) for t in task_ids} == {"complete"}
        events = tasker.events(limit=10_000)
    ran = executions(url)
    completed = [e["step_id"] for e in events if e["name"] == "step.completed"]
    assert len(completed) == len(set(completed)) == 18
    # a step whose result was lost with its connection runs again: that is the only
    # way a second execution may appear, and its result is then recorded once
    assert len({s for s, _, _ in ran}) == 18
