"""The standard workflow patterns run by the real worker on both backends, each with
planned failures before success: final states, attempts, and each successful
execution exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tasker import Tasker, TaskRequest
from tasker.definitions import TemplateDefinition, TemplateRegistry
from tasker.runtime.worker import Worker, WorkerOptions
from tasker.store.database import Database
from tasker.testing import patterns
from tasker.testing.handlers import fail_times, times_out

FAST = {"backoff": {"base_seconds": 0.01, "max_seconds": 0.05, "jitter": 0.0}}

CASES: dict[str, tuple[Callable[..., TemplateDefinition], dict[str, dict[str, Any]], int]] = {
    # pattern: (factory, failure plans, steps)
    "linear": (patterns.linear, {"step_3": fail_times(2), "step_6": fail_times(1)}, 6),
    "diamond": (patterns.diamond, {"left_1": fail_times(2), "end": fail_times(1)}, 7),
    "parallel_merge": (patterns.parallel_merge, {"b_2": fail_times(2), "c_1": fail_times(1)}, 7),
    "tree": (patterns.tree, {"leaf_b": fail_times(2), "root": fail_times(1)}, 8),
    "mixed": (patterns.mixed, {}, 9),
}


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_pattern_completes_with_the_planned_attempts(database: Database, pattern: str) -> None:
    factory, plans, size = CASES[pattern]
    template = factory(plans=plans, **FAST)
    if not plans:  # mixed: fail its first and last steps once
        names = [s.name for s in template.steps]
        plans = {names[0]: fail_times(1), names[-1]: fail_times(2)}
        template = factory(plans=plans, **FAST)
    registry = TemplateRegistry()
    registry.add(template)
    tasker = Tasker(database, registry)
    task_id, _ = tasker.create_task(TaskRequest(template.name, namespace=template.namespace))
    asyncio.run(Worker(tasker, WorkerOptions(concurrency=4, burst=True)).run())
    task = tasker.get_task(task_id)
    assert task["status"] == "complete"
    assert len(task["steps"]) == size
    expected = {s.name: 1 + int(plans.get(s.name, {}).get("fail_times", 0)) for s in template.steps}
    assert {s["name"]: s["attempts"] for s in task["steps"]} == expected
    completed = Counter(
        e["step_name"] for e in tasker.events(task_id=task_id) if e["name"] == "step.completed"
    )
    assert completed == Counter({name: 1 for name in expected})
    events = tasker.events(task_id=task_id)
    changes = [t for t in tasker.transitions(task_id) if t["from_state"] is not None]
    assert len([e for e in events if e["name"].startswith(("task.", "step."))]) == len(changes)
    assert len({e["id"] for e in events}) == len(events)
    # every step started only after all its parents completed
    finished_at = {s["name"]: s["completed_at"] for s in task["steps"]}
    started = {}
    for t in tasker.transitions(task_id):
        if t["to_state"] == "in_progress" and t["step_name"] not in started:
            started[t["step_name"]] = t["created_at"]
    for step in task["steps"]:
        for parent in step["depends_on"]:
            assert finished_at[parent] <= started[step["name"]]


def test_a_step_that_times_out_once_then_succeeds(database: Database) -> None:
    template = patterns.linear(
        3, plans={"step_2": times_out(1, sleep_seconds=5)}, timeout_seconds=0.2, **FAST
    )
    registry = TemplateRegistry()
    registry.add(template)
    tasker = Tasker(database, registry)
    task_id, _ = tasker.create_task(TaskRequest(template.name, namespace=template.namespace))
    asyncio.run(Worker(tasker, WorkerOptions(concurrency=2, burst=True)).run())
    steps = {s["name"]: s for s in tasker.get_task(task_id)["steps"]}
    assert steps["step_2"]["attempts"] == 2 and steps["step_2"]["status"] == "complete"
    retry = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.retry_scheduled"]
    assert [e["payload"]["error_class"] for e in retry] == ["TimeoutError"]
