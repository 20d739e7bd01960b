"""Testing toolkit for Tasker workflows: scripted handlers, DAG patterns, a harness that
runs a task to its end in-process, and assertions with helpful messages.

::

    from tasker.testing import assert_attempts, assert_complete, fail_times, linear, run_task

    def test_step_3_recovers() -> None:
        run = run_task(linear(plans={"step_3": fail_times(2)}))
        assert_complete(run)
        assert_attempts(run, {"step_3": 3})

pytest fixtures (``tasker_app``, ``tasker_backend``) live in
``tasker.testing.pytest_plugin``.
"""

from __future__ import annotations

from tasker.testing.assertions import (
    assert_attempts,
    assert_complete,
    assert_dependency_order,
    assert_each_step_succeeded_once,
    assert_event_counts,
    assert_status,
    event_counts,
)
from tasker.testing.handlers import (
    always_fail,
    fail_permanently,
    fail_times,
    returns,
    scripted,
    scripted_async,
    times_out,
)
from tasker.testing.harness import TaskRun, run_task
from tasker.testing.patterns import (
    apply_plans,
    build,
    chain,
    diamond,
    fan_out,
    linear,
    mixed,
    parallel_merge,
    tree,
)

__all__ = [
    "TaskRun",
    "always_fail",
    "apply_plans",
    "assert_attempts",
    "assert_complete",
    "assert_dependency_order",
    "assert_each_step_succeeded_once",
    "assert_event_counts",
    "assert_status",
    "build",
    "chain",
    "diamond",
    "event_counts",
    "fail_permanently",
    "fail_times",
    "fan_out",
    "linear",
    "mixed",
    "parallel_merge",
    "returns",
    "run_task",
    "scripted",
    "scripted_async",
    "times_out",
    "tree",
]
