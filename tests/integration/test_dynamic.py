"""Dynamic workflows on both backends: branches, joins and skipping, signals, ancestors.

Each test builds a template with in-process handlers and runs it with the in-process
runner (the worker's claim/execute/record path) under a fake clock, then checks what a
user sees: states, results, readiness, history and events.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasker import Branch, FakeClock, Settings, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.engine.attempts import Outcome
from tasker.exceptions import InvalidTransition, NotFound, SignalConflict, ValidationError
from tasker.runtime.runner import run_until_final
from tasker.store.database import Database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_tasker(database: Database, clock: FakeClock, *templates: Template) -> Tasker:
    registry = TemplateRegistry()
    for template in templates:
        registry.add(template)
    return Tasker(database, registry, clock=clock)


def states(tasker: Tasker, task_id: int) -> dict[str, str]:
    return {s["name"]: s["status"] for s in tasker.get_task(task_id)["steps"]}


def step_of(tasker: Tasker, task_id: int, name: str) -> dict[str, Any]:
    return next(s for s in tasker.get_task(task_id)["steps"] if s["name"] == name)


def reasons(tasker: Tasker, task_id: int) -> dict[str, str | None]:
    return {r.name: r.blocking_reason for r in tasker.readiness(task_id)}


def router(choice: Any, ran: list[str]) -> Template:
    """route -> express | standard -> notify (join any); standard -> label (join all)."""
    tpl = Template("router", namespace="orders")

    @tpl.step(branches=["express", "standard"])
    def route(step: Any) -> Any:
        ran.append("route")
        return choice(step)

    @tpl.step(depends_on=[route])
    def express(step: Any) -> dict[str, Any]:
        ran.append("express")
        return {"by": "express", "route": step.results["route"]}

    @tpl.step(depends_on=[route])
    def standard(step: Any) -> dict[str, Any]:
        ran.append("standard")
        return {"by": "standard"}

    @tpl.step(depends_on=[standard])
    def label(step: Any) -> dict[str, Any]:
        ran.append("label")
        return {}

    @tpl.step(depends_on=[express, standard], join="any")
    def notify(step: Any) -> dict[str, Any]:
        ran.append("notify")
        return {"parents": dict(step.results)}

    return tpl


def test_a_branch_runs_the_chosen_child_and_skips_the_rest_down_the_graph(
    database: Database, clock: FakeClock
) -> None:
    # Given a router that chooses express
    ran: list[str] = []
    tpl = router(lambda step: Branch("express", results={"zone": 3}), ran)
    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("router", {}, namespace="orders"))
    # When it runs
    status = run_until_final(tasker, task_id)
    # Then the task completes; standard and its join-all child are skipped, notify ran
    assert status == "complete"
    assert states(tasker, task_id) == {
        "route": "complete",
        "express": "complete",
        "standard": "skipped",
        "label": "skipped",
        "notify": "complete",
    }
    assert sorted(ran) == ["express", "notify", "route"]
    # and Branch's results are the step's results, which its chosen child reads
    assert step_of(tasker, task_id, "route")["results"] == {"zone": 3}
    assert step_of(tasker, task_id, "express")["results"]["route"] == {"zone": 3}
    # and a join-any step sees its skipped parent as None
    assert step_of(tasker, task_id, "notify")["results"]["parents"]["standard"] is None
    # and the readiness says why skipped steps never ran
    assert reasons(tasker, task_id)["standard"] == "skipped"
    assert reasons(tasker, task_id)["label"] == "skipped"
    # and each skip is one transition with its reason and one step.skipped event
    history = [t for t in tasker.transitions(task_id) if t["to_state"] == "skipped"]
    assert {(t["step_name"], t["reason"]) for t in history} == {
        ("standard", "branch not taken"),
        ("label", "a parent was skipped"),
    }
    skipped_events = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.skipped"]
    assert sorted(e["step_name"] for e in skipped_events) == ["label", "standard"]
    completed = [e for e in tasker.events(task_id=task_id) if e["step_name"] == "route"]
    assert [e["payload"].get("branches_taken") for e in completed if e["name"] == "step.completed"]
    assert completed[-1]["payload"]["branches_taken"] == ["express"]
    context = tasker.execution_context(task_id)
    assert context.completion_percentage == 100
    assert context.execution_status == "all_complete"


def test_choosing_both_branches_runs_both(database: Database, clock: FakeClock) -> None:
    ran: list[str] = []
    tasker = make_tasker(database, clock, router(lambda s: Branch("express", "standard"), ran))
    task_id, _ = tasker.create_task(TaskRequest("router", {}, namespace="orders"))
    assert run_until_final(tasker, task_id) == "complete"
    assert set(states(tasker, task_id).values()) == {"complete"}
    assert sorted(ran) == ["express", "label", "notify", "route", "standard"]


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (lambda s: Branch("overnight"), "'overnight', not a branch of step 'route'"),
        (lambda s: {"no": "branch"}, "must return tasker.Branch choosing one or more"),
        (lambda s: Branch(), "chose no branch"),
    ],
    ids=["unknown-name", "no-branch", "empty"],
)
def test_a_bad_branch_choice_fails_the_deciding_step_for_good(
    database: Database, clock: FakeClock, choice: Any, message: str
) -> None:
    # Given a router whose handler chooses badly
    ran: list[str] = []
    tasker = make_tasker(database, clock, router(choice, ran))
    task_id, _ = tasker.create_task(TaskRequest("router", {}, namespace="orders"))
    # When it runs, Then the task fails after one attempt of route, naming the choices
    assert run_until_final(tasker, task_id) == "error"
    route = step_of(tasker, task_id, "route")
    assert route["status"] == "error"
    assert route["attempts"] == 1
    assert route["error"]["class"] == "InvalidBranch"
    assert message in route["error"]["message"]
    assert "express, standard" in route["error"]["message"]
    assert ran == ["route"]


def test_resolving_a_branching_step_by_hand_takes_a_branch(
    database: Database, clock: FakeClock
) -> None:
    # Given a router that failed for good
    ran: list[str] = []
    tasker = make_tasker(database, clock, router(lambda s: Branch("nowhere"), ran))
    task_id, _ = tasker.create_task(TaskRequest("router", {}, namespace="orders"))
    assert run_until_final(tasker, task_id) == "error"
    # When an operator resolves it without a branch, Then that is refused, naming --branch
    with pytest.raises(ValidationError, match=r"express, standard.*--branch"):
        tasker.resolve_step(task_id, "route", reason="by hand")
    with pytest.raises(ValidationError, match="'air', not a branch"):
        tasker.resolve_step(task_id, "route", reason="by hand", branch=("air",))
    assert step_of(tasker, task_id, "route")["status"] == "error"
    # When they resolve it choosing standard
    tasker.resolve_step(task_id, "route", reason="by hand", branch=("standard",))
    # Then standard's side runs, express is skipped, and the task completes
    assert run_until_final(tasker, task_id) == "complete"
    assert states(tasker, task_id)["express"] == "skipped"
    assert sorted(ran) == ["label", "notify", "route", "standard"]


def test_join_any_is_skipped_when_every_parent_is(database: Database, clock: FakeClock) -> None:
    # Given route -> a | b, a -> c, and d joining c and b with join any
    tpl = Template("joins")

    @tpl.step(branches=["a", "b"])
    def route(step: Any) -> Branch:
        return Branch("a")

    @tpl.step(depends_on=[route], branches=["c"])
    def a(step: Any) -> Branch:
        return Branch("c")

    @tpl.step(depends_on=[route])
    def b(step: Any) -> None:
        return None

    @tpl.step(depends_on=[a])
    def c(step: Any) -> None:
        return None

    @tpl.step(depends_on=[b], join="any")
    def only_b(step: Any) -> None:
        return None

    @tpl.step(depends_on=[c, b], join="any")
    def d(step: Any) -> None:
        return None

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("joins", {}))
    assert run_until_final(tasker, task_id) == "complete"
    assert states(tasker, task_id) == {
        "route": "complete",
        "a": "complete",
        "b": "skipped",
        "c": "complete",
        "only_b": "skipped",
        "d": "complete",
    }
    reason = {
        t["step_name"]: t["reason"]
        for t in tasker.transitions(task_id)
        if t["to_state"] == "skipped"
    }
    assert reason == {"b": "branch not taken", "only_b": "every parent was skipped"}


def approval(*, with_handler: bool, timeout: float | None = None) -> Template:
    tpl = Template("expense", namespace="hr")

    @tpl.step()
    def submit(step: Any) -> dict[str, Any]:
        return {"amount": step.context["amount"]}

    options: dict[str, Any] = {"depends_on": ["submit"], "wait_for": "approval"}
    if timeout is not None:
        options["timeout_seconds"] = timeout
    if with_handler:

        @tpl.step(**options)
        def decide(step: Any) -> dict[str, Any]:
            return {"approved": step.signal["ok"], "amount": step.results["submit"]["amount"]}

    else:
        tpl.add_step("decide", None, **options)

    @tpl.step(depends_on=["decide"])
    def pay(step: Any) -> dict[str, Any]:
        return {"paid": step.results["decide"]}

    return tpl


@pytest.mark.parametrize("with_handler", [False, True], ids=["payload", "handler"])
def test_a_step_waits_for_its_signal_then_goes_on(
    database: Database, clock: FakeClock, with_handler: bool
) -> None:
    # Given an expense workflow that waits for approval
    tasker = make_tasker(database, clock, approval(with_handler=with_handler))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 12}, namespace="hr"))
    # When it runs as far as it can
    assert run_until_final(tasker, task_id) == "in_progress"
    # Then decide waits for its signal, and readiness says so
    assert states(tasker, task_id) == {"submit": "complete", "decide": "pending", "pay": "pending"}
    assert reasons(tasker, task_id)["decide"] == "waiting_for_signal"
    assert not tasker.has_live_work(task_id=task_id)
    # When the approval arrives
    receipt = tasker.signal_task(task_id, "approval", {"ok": True}, actor="manager")
    assert receipt.created and receipt.released and receipt.step == "decide"
    # Then the task completes with the payload (or what the handler made of it)
    assert run_until_final(tasker, task_id) == "complete"
    expected = {"approved": True, "amount": 12} if with_handler else {"ok": True}
    assert step_of(tasker, task_id, "decide")["results"] == expected
    assert step_of(tasker, task_id, "pay")["results"] == {"paid": expected}
    received = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.signal_received"]
    assert len(received) == 1
    assert received[0]["step_name"] == "decide"
    assert received[0]["payload"]["signal"] == "approval"
    assert received[0]["payload"]["actor"] == "manager"


def test_a_signal_that_comes_early_is_kept_and_used(database: Database, clock: FakeClock) -> None:
    # Given a task whose waiting step's parent has not run yet
    tasker = make_tasker(database, clock, approval(with_handler=False))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 5}, namespace="hr"))
    # When the signal comes first
    receipt = tasker.signal_task(task_id, "approval", {"ok": "early"})
    assert receipt.created and not receipt.released
    assert reasons(tasker, task_id)["decide"] == "dependencies_not_satisfied"
    # Then the step uses it as soon as its parent is done, without waiting
    assert run_until_final(tasker, task_id) == "complete"
    assert step_of(tasker, task_id, "decide")["results"] == {"ok": "early"}


def test_the_same_signal_twice_is_a_no_op_and_a_different_one_a_conflict(
    database: Database, clock: FakeClock
) -> None:
    tasker = make_tasker(database, clock, approval(with_handler=False))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 5}, namespace="hr"))
    run_until_final(tasker, task_id)
    first = tasker.signal_task(task_id, "approval", {"ok": True, "by": "ann"})
    # When the same signal comes again, key order aside
    again = tasker.signal_task(task_id, "approval", {"by": "ann", "ok": True})
    # Then it changes nothing
    assert first.created and not again.created
    # When a different payload comes, Then it is a conflict and nothing changes
    with pytest.raises(SignalConflict, match="different payload"):
        tasker.signal_task(task_id, "approval", {"ok": False})
    assert step_of(tasker, task_id, "decide")["results"] == {"ok": True, "by": "ann"}
    received = [e for e in tasker.events(task_id=task_id) if e["name"] == "step.signal_received"]
    assert len(received) == 1


def test_unknown_signals_and_tasks_are_not_found(database: Database, clock: FakeClock) -> None:
    tasker = make_tasker(database, clock, approval(with_handler=False))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 5}, namespace="hr"))
    with pytest.raises(NotFound, match="no step waiting for signal 'aproval'; signals: approval"):
        tasker.signal_task(task_id, "aproval", {})
    with pytest.raises(NotFound, match="task 999999 does not exist"):
        tasker.signal_task(999_999, "approval", {})
    with pytest.raises(ValidationError):
        tasker.signal_task(task_id, "approval", {"x": float("nan")})
    names = {e["name"] for e in tasker.events(task_id=task_id)}
    assert "step.signal_received" not in names


def test_a_finished_task_takes_no_new_signal(database: Database, clock: FakeClock) -> None:
    tasker = make_tasker(database, clock, approval(with_handler=False))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 5}, namespace="hr"))
    tasker.cancel_task(task_id, reason="no longer needed")
    with pytest.raises(InvalidTransition, match="takes no more signals"):
        tasker.signal_task(task_id, "approval", {"ok": True})


def test_a_wait_that_times_out_fails_the_task_and_can_be_retried(
    database: Database, clock: FakeClock
) -> None:
    # Given an approval that waits at most one hour
    tasker = make_tasker(database, clock, approval(with_handler=False, timeout=3600))
    task_id, _ = tasker.create_task(TaskRequest("expense", {"amount": 5}, namespace="hr"))
    assert run_until_final(tasker, task_id) == "in_progress"
    # When the hour passes with no signal and the reaper looks
    clock.advance(3599)
    tasker.reap_expired_leases()
    assert step_of(tasker, task_id, "decide")["status"] == "pending"
    clock.advance(2)
    tasker.reap_expired_leases()
    # Then the step fails for good and so does the task
    decide = step_of(tasker, task_id, "decide")
    assert decide["status"] == "error"
    assert decide["retryable"] is False
    assert decide["error"]["class"] == "SignalTimeout"
    assert "'approval'" in decide["error"]["message"]
    assert tasker.task_status(task_id) == "error"
    assert reasons(tasker, task_id)["decide"] == "not_retryable"
    # When an operator retries it, Then it waits again, and a signal completes the task
    tasker.retry_step(task_id, "decide", reason="asked again")
    assert reasons(tasker, task_id)["decide"] == "waiting_for_signal"
    tasker.signal_task(task_id, "approval", {"ok": True})
    assert run_until_final(tasker, task_id) == "complete"


def test_a_root_can_wait_for_a_signal(database: Database, clock: FakeClock) -> None:
    tpl = Template("gate")
    tpl.add_step("opened", None, wait_for="open")

    @tpl.step(depends_on=["opened"])
    def after(step: Any) -> Any:
        return step.results["opened"]

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("gate", {}))
    assert reasons(tasker, task_id)["opened"] == "waiting_for_signal"
    tasker.signal_task(task_id, "open", [1, 2])
    assert run_until_final(tasker, task_id) == "complete"
    assert step_of(tasker, task_id, "after")["results"] == [1, 2]


def test_ancestor_reads_any_upstream_step_and_refuses_others(
    database: Database, clock: FakeClock
) -> None:
    seen: dict[str, Any] = {}
    tpl = Template("chain")

    @tpl.step()
    def first(step: Any) -> dict[str, Any]:
        return {"n": 1}

    @tpl.step()
    def other(step: Any) -> dict[str, Any]:
        return {"n": 99}

    @tpl.step(depends_on=[first])
    def second(step: Any) -> dict[str, Any]:
        return {"n": 2}

    @tpl.step(depends_on=[second])
    def third(step: Any) -> None:
        seen["first"] = step.ancestor("first")
        seen["second"] = step.ancestor("second")
        for name in ("other", "third", "missing"):
            try:
                step.ancestor(name)
            except KeyError as exc:
                seen[name] = str(exc)

    tasker = make_tasker(database, clock, tpl)
    task_id, _ = tasker.create_task(TaskRequest("chain", {}))
    assert run_until_final(tasker, task_id) == "complete"
    assert seen["first"] == {"n": 1}
    assert seen["second"] == {"n": 2}
    assert "'other'" in seen["other"] and "upstream" in seen["other"]
    assert "upstream" in seen["third"] and "upstream" in seen["missing"]


def pipeline(
    files: Any, ran: list[Any], *, fail: set[int] | None = None, **options: Any
) -> Template:
    """list_files -> load_file (map over list_files.files) -> report."""
    tpl = Template("pipeline", defaults={"max_attempts": 2, "backoff": {"base_seconds": 0.0}})
    attempts: dict[int, int] = {}

    @tpl.step()
    def list_files(step: Any) -> dict[str, Any]:
        return {"files": files}

    @tpl.step(depends_on=[list_files], map="list_files.files", **options)
    def load_file(step: Any) -> dict[str, Any]:
        attempts[step.index] = attempts.get(step.index, 0) + 1
        if fail and step.index in fail:
            raise RuntimeError(f"cannot load {step.item}")
        ran.append((step.index, step.item))
        return {"file": step.item, "rows": step.index * 10}

    @tpl.step(depends_on=[load_file])
    def report(step: Any) -> dict[str, Any]:
        loaded = step.results["load_file"]
        return {"files": [r["file"] for r in loaded], "rows": sum(r["rows"] for r in loaded)}

    return tpl


def test_a_map_runs_one_instance_per_item_and_the_fan_in_gets_them_in_order(
    database: Database, clock: FakeClock
) -> None:
    # Given a pipeline whose first step finds three files
    ran: list[Any] = []
    tasker = make_tasker(database, clock, pipeline(["a.csv", "b.csv", "c.csv"], ran))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    # When it runs
    assert run_until_final(tasker, task_id) == "complete"
    # Then each file was loaded once, with its item and index
    assert sorted(ran) == [(0, "a.csv"), (1, "b.csv"), (2, "c.csv")]
    task = tasker.get_task(task_id)
    by_name = {s["name"]: s for s in task["steps"]}
    assert [s["name"] for s in task["steps"]] == [
        "list_files", "load_file", "load_file[0]", "load_file[1]", "load_file[2]", "report",
    ]  # fmt: skip
    # and the group is complete with its instances counted and their results in order
    group = by_name["load_file"]
    assert group["status"] == "complete"
    assert group["instances"] == {"total": 3, "complete": 3}
    files = ["a.csv", "b.csv", "c.csv"]
    assert group["results"] == [{"file": f, "rows": 10 * i} for i, f in enumerate(files)]
    assert by_name["load_file[1]"]["group"] == "load_file"
    assert by_name["load_file[1]"]["index"] == 1
    assert by_name["report"]["results"] == {"files": ["a.csv", "b.csv", "c.csv"], "rows": 30}
    expanded = [e for e in tasker.events(task_id=task_id) if e["name"] == "workflow.map_expanded"]
    assert [e["payload"]["instances"] for e in expanded] == [3]
    assert tasker.execution_context(task_id).total_steps == 6


def test_an_empty_map_completes_its_group_at_once(database: Database, clock: FakeClock) -> None:
    ran: list[Any] = []
    tasker = make_tasker(database, clock, pipeline([], ran))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    assert run_until_final(tasker, task_id) == "complete"
    assert step_of(tasker, task_id, "load_file")["results"] == []
    assert step_of(tasker, task_id, "report")["results"] == {"files": [], "rows": 0}
    assert ran == []


@pytest.mark.parametrize(
    ("files", "options", "message"),
    [
        ({"a": 1}, {}, "map list_files.files: expected a list, got an object"),
        (["x"] * 4, {"max_items": 3}, "4 items is more than max_items (3)"),
    ],
    ids=["not-a-list", "too-long"],
)
def test_a_map_over_a_bad_list_fails_the_group_for_good(
    database: Database, clock: FakeClock, files: Any, options: dict[str, Any], message: str
) -> None:
    tasker = make_tasker(database, clock, pipeline(files, [], **options))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    assert run_until_final(tasker, task_id) == "error"
    group = step_of(tasker, task_id, "load_file")
    assert group["status"] == "error"
    assert group["error"]["class"] == "MapError"
    assert message in group["error"]["message"]
    assert [s["name"] for s in tasker.get_task(task_id)["steps"] if s["group"]] == []


def test_the_task_wide_step_cap_fails_a_map_that_would_pass_it(
    database: Database, clock: FakeClock
) -> None:
    registry = TemplateRegistry()
    registry.add(pipeline(["x"] * 5, []))
    settings = Settings(database_url=database.url, max_task_steps=7)
    tasker = Tasker(database, registry, clock=clock, settings=settings)
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    assert run_until_final(tasker, task_id) == "error"
    message = step_of(tasker, task_id, "load_file")["error"]["message"]
    assert "5 instances would take the task past its limit of steps" in message
    assert "room left: 4" in message


def test_a_failed_instance_fails_its_group_and_retrying_the_group_reopens_it(
    database: Database, clock: FakeClock
) -> None:
    # Given a map whose second instance always fails (2 attempts)
    ran: list[Any] = []
    failing = {1}
    tasker = make_tasker(database, clock, pipeline(["a", "b", "c"], ran, fail=failing))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    # When it runs, Then that instance fails for good, and so do its group and the task
    assert run_until_final(tasker, task_id) == "error"
    found = states(tasker, task_id)
    assert found["load_file[1]"] == "error"
    assert found["load_file"] == "error"
    assert found["report"] == "pending"
    assert step_of(tasker, task_id, "load_file")["instances"] == {
        "total": 3, "complete": 2, "error": 1,
    }  # fmt: skip
    assert (
        "load_file[1] failed for good" in step_of(tasker, task_id, "load_file")["error"]["message"]
    )
    # When the cause is fixed and the group is retried by hand
    failing.clear()
    tasker.retry_step(task_id, "load_file", reason="source fixed")
    # Then only the failed instance runs again, and the task completes
    assert states(tasker, task_id)["load_file[1]"] == "pending"
    assert states(tasker, task_id)["load_file"] == "in_progress"
    assert run_until_final(tasker, task_id) == "complete"
    assert sorted(i for i, _ in ran) == [0, 1, 2]


def test_an_instance_is_resolved_by_hand_by_its_name(database: Database, clock: FakeClock) -> None:
    tasker = make_tasker(database, clock, pipeline(["a", "b"], [], fail={0}))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    assert run_until_final(tasker, task_id) == "error"
    with pytest.raises(ValidationError, match=r"resolve or retry its failed instances"):
        tasker.resolve_step(task_id, "load_file", reason="x")
    tasker.resolve_step(
        task_id, "load_file[0]", reason="loaded by hand", results={"file": "a", "rows": 5}
    )
    assert run_until_final(tasker, task_id) == "complete"
    assert step_of(tasker, task_id, "report")["results"] == {"files": ["a", "b"], "rows": 15}


def test_cancelling_a_task_cancels_its_running_map_group(
    database: Database, clock: FakeClock
) -> None:
    tasker = make_tasker(database, clock, pipeline(["a", "b"], []))
    task_id, _ = tasker.create_task(TaskRequest("pipeline", {}))
    (first,) = tasker.claim("w", 1, task_id=task_id)
    tasker.record(
        [Outcome(first.step_id, task_id, first.claim_token, results={"files": ["a", "b"]})]
    )
    assert states(tasker, task_id)["load_file"] == "in_progress"
    tasker.cancel_task(task_id, reason="stop")
    found = states(tasker, task_id)
    assert found["load_file"] == "cancelled"
    assert found["load_file[0]"] == found["load_file[1]"] == "cancelled"
