"""tasker.testing: scripted handlers, patterns, the run_task harness, assertions, fixtures.

These run real tasks on temporary SQLite files with a fake clock; each takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import tasker.testing
from tasker import FakeClock, StepContext, Tasker, TaskRequest, Template, TemplateDefinition
from tasker.exceptions import TemplateError
from tasker.runtime.runner import run_until_final
from tasker.testing import (
    always_fail,
    assert_attempts,
    assert_complete,
    assert_dependency_order,
    assert_each_step_succeeded_once,
    assert_event_counts,
    assert_status,
    build,
    chain,
    diamond,
    fail_permanently,
    fail_times,
    fan_out,
    linear,
    mixed,
    parallel_merge,
    returns,
    run_task,
    times_out,
    tree,
)


def seconds_between(start: str, end: str) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


# -- every pattern, with a flaky step ------------------------------------------------

PATTERNS: list[tuple[str, Callable[..., TemplateDefinition], int, str]] = [
    ("linear", linear, 6, "step_3"),
    ("chain", lambda **kw: chain(4, **kw), 4, "step_4"),
    ("diamond", diamond, 7, "middle"),
    ("parallel_merge", parallel_merge, 7, "b_2"),
    ("tree", tree, 8, "leaf_c"),
    ("mixed", mixed, 9, "validate"),
    ("fan_out", lambda **kw: fan_out(5, **kw), 7, "worker_3"),
]


@pytest.mark.parametrize(
    ("factory", "size", "flaky"),
    [pytest.param(f, n, s, id=name) for name, f, n, s in PATTERNS],
)
def test_every_pattern_completes_in_dependency_order_despite_a_flaky_step(
    factory: Callable[..., TemplateDefinition], size: int, flaky: str
) -> None:
    # Given a pattern whose step `flaky` fails twice
    template = factory(plans={flaky: fail_times(2)})
    assert len(template.steps) == size

    # When it runs
    run = run_task(template)

    # Then the task completes, the flaky step took three attempts, the others one
    assert_complete(run)
    assert_attempts(run, {name: 3 if name == flaky else 1 for name in run.steps})
    assert_dependency_order(run)
    assert sorted(run.execution_order) == sorted(run.steps)
    assert_event_counts(
        run,
        {"step.completed": size, "step.retry_scheduled": 2, "task.completed": 1, "step.failed": 0},
    )


def test_linear_with_step_3_failing_twice_takes_three_attempts() -> None:
    run = run_task(linear(plans={"step_3": fail_times(2)}))

    assert_complete(run)
    assert run.attempts("step_3") == 3
    assert run.execution_order == [f"step_{i}" for i in range(1, 7)]


def test_pattern_shapes_are_as_documented() -> None:
    edges = {s.name: sorted(s.depends_on) for s in diamond().steps}
    assert edges == {
        "start": [],
        "left_1": ["start"],
        "right_1": ["start"],
        "middle": ["left_1", "right_1"],
        "left_2": ["middle"],
        "right_2": ["middle"],
        "end": ["left_2", "right_2"],
    }
    assert tree().step("converge").depends_on == ("leaf_a", "leaf_b", "leaf_c", "leaf_d")
    assert parallel_merge().step("merge").depends_on == ("a_2", "b_2", "c_2")
    assert mixed().step("finalize").depends_on == ("combine", "analyze")
    assert fan_out(3).step("sink").depends_on == ("worker_1", "worker_2", "worker_3")
    assert [s.name for s in chain(3).steps] == ["step_1", "step_2", "step_3"]


def test_pattern_options_reach_the_template() -> None:
    template = linear(
        3,
        namespace="ns",
        name="custom",
        version="2.0.0",
        max_attempts=5,
        timeout_seconds=7,
        backoff={"base_seconds": 0.5, "max_seconds": 2.0},
    )

    assert template.key == "ns/custom@2.0.0"
    spec = template.step("step_2")
    assert (spec.max_attempts, spec.timeout_seconds) == (5, 7.0)
    assert (spec.backoff.base_seconds, spec.backoff.max_seconds) == (0.5, 2.0)
    assert spec.handler == "tasker.testing.handlers:scripted"


def test_bad_pattern_arguments_are_refused_with_the_reason() -> None:
    with pytest.raises(TemplateError, match="unknown step 'step_9'"):
        linear(plans={"step_9": fail_times(1)})
    with pytest.raises(ValueError, match="unknown plan key 'fail_time'"):
        linear(plans={"step_1": {"fail_time": 1}})
    with pytest.raises(ValueError, match="at least one step"):
        chain(0)
    with pytest.raises(ValueError, match="width of at least 1"):
        fan_out(0)


# -- failure modes -----------------------------------------------------------------


def test_always_failing_step_exhausts_its_attempts_and_its_dependents_never_start() -> None:
    # Given step_2 of a linear chain always fails, with 4 attempts allowed
    run = run_task(linear(4, plans={"step_2": always_fail()}, max_attempts=4))

    # Then the task is in error, step_2 used every attempt, nothing after it ran
    assert_status(run, "error")
    assert run.attempts("step_2") == 4
    assert run.steps["step_2"]["status"] == "error"
    assert run.steps["step_2"]["error"]["class"] == "RetryableError"
    assert run.execution_order == ["step_1", "step_2"]
    for name in ("step_3", "step_4"):
        assert run.steps[name]["status"] == "pending"
        assert run.attempts(name) == 0
    assert_event_counts(run, {"step.retry_scheduled": 3, "step.failed": 1, "task.failed": 1})


def test_permanent_failure_makes_exactly_one_attempt() -> None:
    run = run_task(diamond(plans={"left_1": fail_permanently()}, max_attempts=5))

    assert_status(run, "error")
    assert run.attempts("left_1") == 1
    step = run.steps["left_1"]
    assert step["retryable"] is False
    assert step["error"]["class"] == "PermanentError"
    assert "middle" not in run.execution_order
    assert_event_counts(run, {"step.retry_scheduled": 0, "step.failed": 1})


def test_retry_after_sets_the_next_retry_time_and_the_retry_waits_for_it() -> None:
    # Given a step that asks for 7 seconds of backoff (jitter 10 %)
    template = linear(
        2,
        plans={"step_1": fail_times(1, retry_after=7)},
        backoff={"base_seconds": 1.0, "max_seconds": 60.0, "jitter": 0.1},
    )

    run = run_task(template)

    # Then next_retry_at is about 7 s after the failure, and the retry started no earlier
    assert_complete(run)
    [scheduled] = run.events_named("step.retry_scheduled")
    delay = seconds_between(scheduled["created_at"], scheduled["payload"]["next_retry_at"])
    assert 7 * 0.9 <= delay <= 7 * 1.1
    second_start = run.events_named("step.started")[1]
    assert second_start["step_name"] == "step_1"
    assert second_start["payload"]["attempt"] == 2
    assert seconds_between(scheduled["payload"]["next_retry_at"], second_start["created_at"]) >= 0


def test_without_retry_after_the_exponential_backoff_is_recorded() -> None:
    run = run_task(
        linear(1, plans={"step_1": fail_times(2)}, backoff={"base_seconds": 2.0, "jitter": 0.0})
    )

    assert_complete(run)
    delays = [
        seconds_between(e["created_at"], e["payload"]["next_retry_at"])
        for e in run.events_named("step.retry_scheduled")
    ]
    assert delays == [4.0, 8.0]  # base * 2**n for n = 1, 2


def test_a_step_that_times_out_once_is_retried_and_the_timeout_recorded() -> None:
    run = run_task(chain(2, plans={"step_1": times_out(1)}, timeout_seconds=0.05))

    assert_complete(run)
    assert run.attempts("step_1") == 2
    assert run.template.step("step_1").handler == "tasker.testing.handlers:scripted_async"
    [failure] = run.events_named("step.retry_scheduled")
    assert failure["payload"]["error_class"] == "TimeoutError"
    assert "timeout of 0.05 seconds" in failure["payload"]["error_message"]


# -- data --------------------------------------------------------------------------


def test_results_flow_from_parents_to_children() -> None:
    run = run_task(diamond(plans={"start": returns({"order_id": 7})}))

    assert_complete(run)
    assert run.results("start") == {"order_id": 7}
    assert run.results("middle") == {
        "step": "middle",
        "attempt": 1,
        "parents": ["left_1", "right_1"],
    }
    assert run.results("end")["parents"] == ["left_2", "right_2"]


def test_a_builder_template_runs_its_handlers_in_process() -> None:
    shop = Template("order", namespace="toolkit_test")

    @shop.step()
    def price(step: StepContext) -> dict[str, Any]:
        return {"cents": step.context["quantity"] * 250}

    @shop.step(depends_on=[price], config={"currency": "EUR"})
    def invoice(step: StepContext) -> dict[str, Any]:
        return {"total": f"{step.results['price']['cents'] / 100:.2f} {step.config['currency']}"}

    run = run_task(shop, {"quantity": 3})

    assert_complete(run)
    assert_each_step_succeeded_once(run)
    assert run.results("invoice") == {"total": "7.50 EUR"}
    assert run.task["context"] == {"quantity": 3}
    with pytest.raises(TypeError, match="config="):
        run_task(shop, plans={"price": fail_times(1)})


def test_a_yaml_template_with_plans_runs_from_its_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "namespace: toolkit_test\n"
        "name: from_yaml\n"
        "steps:\n"
        "  - {name: a, handler: 'tasker.testing.handlers:scripted'}\n"
        "  - {name: b, handler: 'tasker.testing.handlers:scripted', depends_on: [a]}\n",
        encoding="utf-8",
    )

    run = run_task(path, plans={"b": fail_times(1)})

    assert_complete(run)
    assert_attempts(run, {"a": 1, "b": 2})


def test_a_kept_database_can_be_inspected_afterwards(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"

    run = run_task(linear(2), database_url=url)

    assert run.database_url == url
    from tasker.store import open_database

    with Tasker(open_database(url)) as app:
        assert app.task_status(run.task_id) == "complete"


def test_temporary_databases_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    run = run_task(linear(1))

    assert run.database_url is None
    assert list(tmp_path.iterdir()) == []


# -- assertion messages ------------------------------------------------------------


@pytest.fixture(scope="module")
def flaky_run() -> tasker.testing.TaskRun:
    return run_task(linear(3, plans={"step_2": fail_times(1)}))


def test_assert_status_says_what_the_task_ended_as(flaky_run: tasker.testing.TaskRun) -> None:
    with pytest.raises(AssertionError, match=r"ended 'complete', expected 'error'"):
        assert_status(flaky_run, "error")


def test_assert_complete_lists_the_step_states() -> None:
    run = run_task(linear(2, plans={"step_1": fail_permanently()}))
    with pytest.raises(AssertionError, match=r"(?s)expected 'complete'.*step_1: error, 1 attempts"):
        assert_complete(run)


def test_assert_attempts_names_the_step_and_both_counts(flaky_run: tasker.testing.TaskRun) -> None:
    with pytest.raises(AssertionError, match=r"step_2: 2 attempts, expected 1"):
        assert_attempts(flaky_run, {"step_1": 1, "step_2": 1})
    with pytest.raises(AssertionError, match=r"no step 'step_7'"):
        assert_attempts(flaky_run, {"step_7": 1})


def test_assert_event_counts_names_the_event_and_both_counts(
    flaky_run: tasker.testing.TaskRun,
) -> None:
    with pytest.raises(AssertionError, match=r"step.completed: 3, expected 4"):
        assert_event_counts(flaky_run, {"step.completed": 4})


def test_assert_each_step_succeeded_once_names_the_retried_step(
    flaky_run: tasker.testing.TaskRun,
) -> None:
    with pytest.raises(AssertionError, match=r"step_2: complete after 2 attempts"):
        assert_each_step_succeeded_once(flaky_run)


def test_assert_dependency_order_catches_a_step_started_before_its_parent(
    flaky_run: tasker.testing.TaskRun,
) -> None:
    # Given a history where step_3 starts before step_2 completes (edited by hand)
    history = [dict(t) for t in flaky_run.transitions]
    step_3_start = next(
        t for t in history if t["step_name"] == "step_3" and t["to_state"] == "in_progress"
    )
    step_3_start["id"] = -1
    tampered = tasker.testing.TaskRun(**{**flaky_run.__dict__, "transitions": history})

    with pytest.raises(AssertionError, match="step_3 started before its parent step_2 completed"):
        assert_dependency_order(tampered)


def test_run_step_lookup_names_the_known_steps(flaky_run: tasker.testing.TaskRun) -> None:
    with pytest.raises(KeyError, match="steps: step_1, step_2, step_3"):
        flaky_run.attempts("nope")


def test_public_api_is_sorted_and_importable() -> None:
    assert tasker.testing.__all__ == sorted(tasker.testing.__all__)
    for name in tasker.testing.__all__:
        assert getattr(tasker.testing, name) is not None


# -- the pytest plugin's fixtures -------------------------------------------------


def test_tasker_app_fixture_runs_tasks_on_a_fake_clock(tasker_app: Tasker) -> None:
    assert isinstance(tasker_app.clock, FakeClock)
    template = tasker_app.registry.add(chain(2, plans={"step_1": fail_times(1)}))
    task_id, created = tasker_app.create_task(
        TaskRequest(template.name, namespace=template.namespace)
    )

    assert created
    assert run_until_final(tasker_app, task_id) == "complete"
    assert tasker_app.clock.now() > datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def test_tasker_backend_fixture_gives_a_migrated_database(tasker_backend: str) -> None:
    run = run_task(tree(plans={"leaf_b": fail_times(1)}), database_url=tasker_backend)

    assert_complete(run)
    assert run.database_url == tasker_backend
    assert run.attempts("leaf_b") == 2
    assert_dependency_order(run)


def test_build_makes_a_scripted_template_of_any_shape() -> None:
    template = build([("a", []), ("b", []), ("c", ["a", "b"])], name="v_shape")

    run = run_task(template)

    assert_complete(run)
    assert run.execution_order[-1] == "c"
    assert run.results("c")["parents"] == ["a", "b"]
