"""Assertions over a :class:`~tasker.testing.TaskRun` whose messages say what differed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from tasker.states import SATISFIES_DEPENDENCY
from tasker.testing.harness import TaskRun, step_history


def assert_status(run: TaskRun, status: str) -> None:
    """The task ended in ``status``."""
    if run.status != status:
        raise AssertionError(
            f"task {run.task_id} ({run.template.key}) ended {run.status!r}, expected "
            f"{status!r}\n{_step_table(run)}"
        )


def assert_complete(run: TaskRun) -> None:
    """The task completed and so did every step."""
    assert_status(run, "complete")
    unfinished = {name: s["status"] for name, s in run.steps.items() if s["status"] != "complete"}
    if unfinished:
        raise AssertionError(
            f"task {run.task_id} is complete but these steps are not: {unfinished}"
        )


def assert_attempts(run: TaskRun, expected: Mapping[str, int]) -> None:
    """Each named step ran exactly the given number of times."""
    _check_names(run, expected)
    wrong = {
        name: (run.attempts(name), count)
        for name, count in expected.items()
        if run.attempts(name) != count
    }
    if wrong:
        lines = [
            f"  {name}: {actual} attempts, expected {want}"
            for name, (actual, want) in wrong.items()
        ]
        raise AssertionError("attempts differ:\n" + "\n".join(lines) + f"\n{_step_table(run)}")


def assert_dependency_order(run: TaskRun) -> None:
    """Every step first started after all its parents had completed (from the history)."""
    finished_at: dict[str, int] = {}
    started_at: dict[str, int] = {}
    for position, row in enumerate(step_history(run.transitions)):
        name = row["step_name"]
        if row["to_state"] == "in_progress":
            started_at.setdefault(name, position)
        elif row["to_state"] in SATISFIES_DEPENDENCY:
            finished_at.setdefault(name, position)
    problems = []
    for name, step in run.steps.items():
        if name not in started_at:
            continue
        for parent in step["depends_on"]:
            done = finished_at.get(parent)
            if done is None:
                problems.append(f"  {name} started but its parent {parent} never completed")
            elif done > started_at[name]:
                problems.append(f"  {name} started before its parent {parent} completed")
    if problems:
        raise AssertionError(
            "dependency order violated:\n"
            + "\n".join(problems)
            + f"\nexecution order: {run.execution_order}"
        )


def assert_event_counts(run: TaskRun, expected: Mapping[str, int]) -> None:
    """The task published each named event exactly the given number of times."""
    counts = event_counts(run)
    wrong = {name: counts.get(name, 0) for name, n in expected.items() if counts.get(name, 0) != n}
    if wrong:
        lines = [f"  {name}: {wrong[name]}, expected {expected[name]}" for name in wrong]
        raise AssertionError(
            "event counts differ:\n"
            + "\n".join(lines)
            + f"\nall events: {dict(sorted(counts.items()))}"
        )


def assert_each_step_succeeded_once(run: TaskRun) -> None:
    """Every step completed on its first attempt."""
    wrong = {
        name: f"{step['status']} after {step['attempts']} attempts"
        for name, step in run.steps.items()
        if step["status"] != "complete" or step["attempts"] != 1
    }
    if wrong:
        lines = [f"  {name}: {what}" for name, what in wrong.items()]
        raise AssertionError("not every step succeeded on its first attempt:\n" + "\n".join(lines))


def event_counts(run: TaskRun) -> Counter[str]:
    """How many times each event name was published for the task."""
    return Counter(event["name"] for event in run.events)


def _check_names(run: TaskRun, names: Mapping[str, Any]) -> None:
    unknown = sorted(set(names) - set(run.steps))
    if unknown:
        raise AssertionError(
            f"task {run.task_id} has no step {unknown[0]!r}; steps: {', '.join(run.steps)}"
        )


def _step_table(run: TaskRun) -> str:
    lines = ["steps:"]
    for name, step in run.steps.items():
        error = step.get("error") or {}
        detail = f" ({error.get('class')}: {error.get('message')})" if error else ""
        lines.append(f"  {name}: {step['status']}, {step['attempts']} attempts{detail}")
    return "\n".join(lines)
