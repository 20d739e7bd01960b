"""Child workflows on both backends: a step with ``workflow`` runs another template as
a child task, once, and completes with the child's results (or fails with it).

Each test builds templates with in-process handlers and runs them with the in-process
runner (which runs the child tasks' steps too) under a fake clock.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from tasker import FakeClock, PermanentError, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.exceptions import TemplateError, ValidationError
from tasker.runtime.runner import run_until_final
from tasker.store.database import Database

SHIP = {"namespace": "shipping", "name": "ship_parcel"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_tasker(database: Database, clock: FakeClock, *templates: Template) -> Tasker:
    registry = TemplateRegistry()
    for template in templates:
        registry.add(template)
    return Tasker(database, registry, clock=clock)


def step_of(tasker: Tasker, task_id: int, name: str) -> dict[str, Any]:
    return next(s for s in tasker.get_task(task_id)["steps"] if s["name"] == name)


def ship_parcel(fail: bool = False) -> Template:
    """shipping/ship_parcel: label -> send (send fails for good when ``fail``)."""
    tpl = Template("ship_parcel", namespace="shipping", version="1.0.0")

    @tpl.step()
    def label(step: Any) -> dict[str, Any]:
        return {"label": f"L-{step.context['parcel']}"}

    @tpl.step(depends_on=[label])
    def send(step: Any) -> dict[str, Any]:
        if fail:
            raise PermanentError("carrier refused")
        return {"sent": step.results["label"]["label"], "context": dict(step.context)}

    return tpl


def order(**ship_options: Any) -> Template:
    """orders/order: split -> ship (a child workflow step) -> done."""
    tpl = Template("order", namespace="orders")

    @tpl.step()
    def split(step: Any) -> dict[str, Any]:
        return {"parcels": [{"parcel": 1}, {"parcel": 2}]}

    tpl.add_step("ship", ship_options.pop("handler", None), depends_on=["split"], **ship_options)

    @tpl.step(depends_on=["ship"])
    def done(step: Any) -> dict[str, Any]:
        return {"shipped": step.results["ship"]}

    return tpl


def test_a_child_task_runs_once_and_the_step_completes_with_its_sinks_results(
    database: Database, clock: FakeClock
) -> None:
    # Given an order whose ship step runs shipping/ship_parcel with the order's context
    tasker = make_tasker(database, clock, ship_parcel(), order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))

    # When it runs to the end
    assert run_until_final(tasker, task_id) == "complete"

    # Then one child task ran, with the parent's context, linked both ways
    children = tasker.children_of(task_id)
    assert len(children) == 1
    child = tasker.get_task(children[0]["id"])
    ship = step_of(tasker, task_id, "ship")
    assert child["status"] == "complete"
    assert child["context"] == {"parcel": 7}
    assert (child["parent_task_id"], child["parent_step_id"]) == (task_id, ship["id"])
    assert ship["child_task_id"] == child["id"]
    assert ship["workflow"] == {**SHIP, "version": "1.0.0"}  # pinned when created
    # And the step's results are the child's sink results, which its dependents read
    expected = {"send": {"sent": "L-7", "context": {"parcel": 7}}}
    assert ship["results"] == expected
    assert step_of(tasker, task_id, "done")["results"] == {"shipped": expected}
    assert tasker.get_task(task_id)["parent_task_id"] is None
    # And the child's creation event names its parent
    created = [
        e for e in tasker.events(task_id=child["id"]) if e["name"] == "workflow.task_created"
    ]
    assert created[0]["payload"]["parent_task_id"] == task_id
    names = [e["name"] for e in tasker.events(task_id=task_id)]
    assert names.count("workflow.child_task_created") == 1


def test_a_handler_makes_the_childs_context(database: Database, clock: FakeClock) -> None:
    # Given a ship step whose handler returns the child's context
    calls: list[int] = []

    def parcel_context(step: Any) -> dict[str, Any]:
        calls.append(step.attempt)
        return {"parcel": step.results["split"]["parcels"][1]["parcel"], "from": "handler"}

    tasker = make_tasker(
        database, clock, ship_parcel(), order(workflow=SHIP, handler=parcel_context)
    )
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))

    # When it runs
    assert run_until_final(tasker, task_id) == "complete"

    # Then the child got the handler's return value as its context
    (child,) = tasker.children_of(task_id)
    assert tasker.get_task(child["id"])["context"] == {"parcel": 2, "from": "handler"}
    assert step_of(tasker, task_id, "ship")["results"]["send"]["sent"] == "L-2"
    assert calls == [1]


def test_a_waiting_step_says_it_waits_for_its_child(database: Database, clock: FakeClock) -> None:
    # Given an order whose child is created but not run yet
    tasker = make_tasker(database, clock, ship_parcel(), order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))
    (split,) = tasker.claim("w", 1, task_id=task_id)
    from tasker.engine.attempts import Outcome

    tasker.record([Outcome(split.step_id, task_id, split.claim_token, results={"parcels": []})])

    # Then the ship step is in_progress, waiting for its child, and no worker holds it
    reasons = {r.name: r.blocking_reason for r in tasker.readiness(task_id)}
    assert reasons["ship"] == "waiting_for_child"
    ship = step_of(tasker, task_id, "ship")
    assert ship["status"] == "in_progress" and ship["child_task_id"] is not None
    assert not tasker.has_live_work(task_id=task_id)  # its child's steps are the work
    assert tasker.has_live_work(task_id=ship["child_task_id"])


def test_a_child_that_fails_for_good_fails_the_step_and_the_task(
    database: Database, clock: FakeClock
) -> None:
    # Given a child workflow that fails for good
    tasker = make_tasker(database, clock, ship_parcel(fail=True), order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))

    # When it runs
    assert run_until_final(tasker, task_id) == "error"

    # Then the step failed, not retryable, naming the child; done never ran
    (child,) = tasker.children_of(task_id)
    assert child["status"] == "error"
    ship = step_of(tasker, task_id, "ship")
    assert ship["status"] == "error" and ship["retryable"] is False
    assert ship["error"]["class"] == "ChildTaskFailed"
    assert f"child task {child['id']} failed" in ship["error"]["message"]
    assert step_of(tasker, task_id, "done")["status"] == "pending"


def test_retrying_the_step_retries_its_child_and_never_starts_a_second(
    database: Database, clock: FakeClock
) -> None:
    # Given a child whose send step fails once for good, then works
    outcomes = iter([PermanentError("carrier down"), None])
    tpl = Template("ship_parcel", namespace="shipping", version="1.0.0")

    @tpl.step()
    def send(step: Any) -> dict[str, Any]:
        problem = next(outcomes)
        if problem is not None:
            raise problem
        return {"sent": True}

    tasker = make_tasker(database, clock, tpl, order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))
    assert run_until_final(tasker, task_id) == "error"

    # When the parent's step is retried by hand
    tasker.retry_step(task_id, "ship", actor="op")

    # Then the same child ran again and the parent completed with its results
    assert run_until_final(tasker, task_id) == "complete"
    (child,) = tasker.children_of(task_id)
    assert child["status"] == "complete"
    assert step_of(tasker, task_id, "ship")["results"] == {"send": {"sent": True}}


def test_retrying_a_failed_child_task_reopens_the_parent(
    database: Database, clock: FakeClock
) -> None:
    # Given a failed child (and so a failed parent)
    outcomes = iter([PermanentError("carrier down"), None])
    tpl = Template("ship_parcel", namespace="shipping", version="1.0.0")

    @tpl.step()
    def send(step: Any) -> dict[str, Any]:
        problem = next(outcomes)
        if problem is not None:
            raise problem
        return {"sent": True}

    tasker = make_tasker(database, clock, tpl, order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))
    assert run_until_final(tasker, task_id) == "error"
    (child,) = tasker.children_of(task_id)

    # When the child task itself is retried
    tasker.retry_task(child["id"], actor="op")

    # Then the parent waits for it again and completes with it
    assert tasker.task_status(task_id) == "in_progress"
    assert step_of(tasker, task_id, "ship")["status"] == "in_progress"
    assert run_until_final(tasker, task_id) == "complete"


def test_cancelling_a_task_cancels_its_unfinished_children(
    database: Database, clock: FakeClock
) -> None:
    # Given an order waiting for its child
    tasker = make_tasker(database, clock, ship_parcel(), order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))
    (split,) = tasker.claim("w", 1, task_id=task_id)
    from tasker.engine.attempts import Outcome

    tasker.record([Outcome(split.step_id, task_id, split.claim_token, results={})])
    (child,) = tasker.children_of(task_id)

    # When the order is cancelled
    assert tasker.cancel_task(task_id, actor="op", reason="customer changed mind")

    # Then its child and its waiting step are cancelled too
    assert tasker.task_status(child["id"]) == "cancelled"
    assert step_of(tasker, task_id, "ship")["status"] == "cancelled"
    assert all(s["status"] == "cancelled" for s in tasker.get_task(child["id"])["steps"])


def test_cancelling_a_child_fails_the_step_that_started_it(
    database: Database, clock: FakeClock
) -> None:
    tasker = make_tasker(database, clock, ship_parcel(), order(workflow=SHIP))
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))
    (split,) = tasker.claim("w", 1, task_id=task_id)
    from tasker.engine.attempts import Outcome

    tasker.record([Outcome(split.step_id, task_id, split.claim_token, results={})])
    (child,) = tasker.children_of(task_id)

    tasker.cancel_task(child["id"], actor="op")

    ship = step_of(tasker, task_id, "ship")
    assert ship["status"] == "error" and "was cancelled" in ship["error"]["message"]
    assert tasker.task_status(task_id) == "error"


def test_an_invalid_context_fails_the_step_for_good(database: Database, clock: FakeClock) -> None:
    # Given a child template whose context needs a parcel, and a handler that gives none
    child = Template(
        "ship_parcel",
        namespace="shipping",
        context_schema={"type": "object", "required": ["parcel"]},
    )

    @child.step()
    def send(step: Any) -> None:
        return None

    tasker = make_tasker(
        database, clock, child, order(workflow=SHIP, handler=lambda step: {"nothing": 1})
    )
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 7}, namespace="orders"))

    assert run_until_final(tasker, task_id) == "error"

    ship = step_of(tasker, task_id, "ship")
    assert ship["error"]["class"] == "InvalidChildContext"
    assert "'parcel' is a required property" in ship["error"]["message"]
    assert ship["retryable"] is False and tasker.children_of(task_id) == []


def test_an_unknown_template_is_refused_when_a_task_is_created(
    database: Database, clock: FakeClock
) -> None:
    tasker = make_tasker(database, clock, order(workflow={"namespace": "nope", "name": "gone"}))
    with pytest.raises(ValidationError, match=r"step 'ship': workflow names an unknown template"):
        tasker.create_task(TaskRequest("order", {}, namespace="orders"))
    assert tasker.list_tasks() == []


def test_child_workflows_that_recurse_are_refused(database: Database, clock: FakeClock) -> None:
    # Given a -> b -> a through two templates
    a = Template("a", namespace="loop")
    a.add_step("call_b", None, workflow={"namespace": "loop", "name": "b"})
    b = Template("b", namespace="loop")
    b.add_step("call_a", None, workflow={"namespace": "loop", "name": "a"})
    tasker = make_tasker(database, clock, a, b)

    with pytest.raises(ValidationError, match=r"recurse without end: loop/a@0.1.0 -> loop/b@0"):
        tasker.create_task(TaskRequest("a", {}, namespace="loop"))
    assert tasker.list_tasks() == []


def test_a_template_that_starts_itself_is_refused_at_load() -> None:
    selfish = Template("selfish", namespace="loop")
    selfish.add_step("again", None, workflow={"namespace": "loop", "name": "selfish"})
    with pytest.raises(TemplateError, match="is this template itself"):
        selfish.build()


def test_a_map_of_children_starts_one_child_per_item(database: Database, clock: FakeClock) -> None:
    # Given ship mapping over split.parcels: one child per parcel, the item as its context
    tasker = make_tasker(database, clock, ship_parcel(), order(workflow=SHIP, map="split.parcels"))
    task_id, _ = tasker.create_task(TaskRequest("order", {}, namespace="orders"))

    assert run_until_final(tasker, task_id) == "complete"

    children = tasker.children_of(task_id)
    assert [tasker.get_task(c["id"])["context"] for c in children] == [{"parcel": 1}, {"parcel": 2}]
    ship = step_of(tasker, task_id, "ship")
    assert [r["send"]["sent"] for r in ship["results"]] == ["L-1", "L-2"]


def test_grandchildren_run_inline_and_settle_up_the_chain(
    database: Database, clock: FakeClock
) -> None:
    # Given order -> ship (child: wrap -> grandchild ship_parcel)
    wrapper = Template("wrap", namespace="shipping")
    wrapper.add_step("inner", None, workflow=SHIP)
    tasker = make_tasker(
        database,
        clock,
        ship_parcel(),
        wrapper,
        order(workflow={"namespace": "shipping", "name": "wrap"}),
    )
    task_id, _ = tasker.create_task(TaskRequest("order", {"parcel": 3}, namespace="orders"))

    assert run_until_final(tasker, task_id) == "complete"

    ship = step_of(tasker, task_id, "ship")
    assert ship["results"] == {"inner": {"send": {"sent": "L-3", "context": {"parcel": 3}}}}


def test_a_missing_context_for_a_map_item_that_is_no_object_fails_the_instance(
    database: Database, clock: FakeClock
) -> None:
    tpl = Template("order", namespace="orders")

    @tpl.step()
    def split(step: Any) -> dict[str, Any]:
        return {"parcels": [1]}

    tpl.add_step("ship", None, depends_on=["split"], workflow=SHIP, map="split.parcels")
    tasker = make_tasker(database, clock, ship_parcel(), tpl)
    task_id, _ = tasker.create_task(TaskRequest("order", {}, namespace="orders"))

    assert run_until_final(tasker, task_id) == "error"
    assert step_of(tasker, task_id, "ship[0]")["error"]["class"] == "InvalidChildContext"
    assert step_of(tasker, task_id, "ship")["status"] == "error"


def test_validation_error_is_raised_for_unknown_workflow_keys() -> None:
    tpl = Template("order", namespace="orders")
    tpl.add_step("ship", None, workflow={"name": "x", "verison": "1"})
    with pytest.raises(TemplateError, match="unknown key 'verison' in workflow"):
        tpl.build()


def test_the_handlers_doc_example_runs_a_child_inline() -> None:
    # Given the tested example of docs/handlers.md (it uses tasker.testing.run_task, which
    # runs the child task's steps in-process too)
    doc = (Path(__file__).parents[2] / "docs" / "handlers.md").read_text(encoding="utf-8")
    (source,) = re.findall(
        r"<!-- BEGIN TESTED EXAMPLE: child_workflows.py -->\n```python\n(.*?)```\n"
        r"<!-- END TESTED EXAMPLE -->",
        doc,
        flags=re.DOTALL,
    )
    module = types.ModuleType("docs_child_workflows")
    sys.modules[module.__name__] = module
    try:
        # When it runs, Then its own assertions hold
        exec(compile(source, "docs/handlers.md", "exec"), module.__dict__)
    finally:
        sys.modules.pop(module.__name__, None)
    assert module.run.status == "complete"


@pytest.mark.slow
def test_task_show_says_what_a_step_waits_for_and_whose_child_a_task_is(
    tmp_path: Path,
) -> None:
    # Given a parent whose root step started its child (no handler: at creation)
    (tmp_path / "t.yaml").write_text(
        "namespace: kids\nname: parent\nsteps:\n"
        "  - {name: ship, workflow: {namespace: kids, name: leaf}}\n"
        "---\nnamespace: kids\nname: leaf\nsteps:\n"
        "  - {name: work, handler: tasker.builtin_handlers:noop}\n"
    )
    url = f"sqlite:///{tmp_path}/t.db"
    registry = TemplateRegistry.from_paths([str(tmp_path / "t.yaml")])
    with Tasker.open(url, migrate=True, registry=registry) as tasker:
        task_id, _ = tasker.create_task(TaskRequest("parent", {}, namespace="kids"))
        (child,) = tasker.children_of(task_id)
    env = {**os.environ, "TASKER_DATABASE_URL": url, "TASKER_TEMPLATES": str(tmp_path)}
    tasker_cli = str(Path(sys.executable).with_name("tasker"))

    # When both are shown
    parent_shown = subprocess.run(
        [tasker_cli, "task", "show", str(task_id)], env=env, capture_output=True, text=True
    )
    child_shown = subprocess.run(
        [tasker_cli, "task", "show", str(child["id"])], env=env, capture_output=True, text=True
    )

    # Then the parent's step waits for its child, and the child names its parent
    assert parent_shown.returncode == 0, parent_shown.stderr
    assert f"waiting for child task {child['id']} (pending)" in parent_shown.stdout
    assert f"child of task {task_id}" in child_shown.stdout
