"""Property: the incremental state used for claiming (remaining-parents counter and
``claimable_at``) agrees with the readiness function at every point of random
histories driven through the real engine, on both backends.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker import FakeClock, Tasker, TaskRequest
from tasker.definitions import StepSpec, TemplateDefinition, TemplateRegistry
from tasker.engine.attempts import Outcome
from tasker.exceptions import InvalidTransition
from tasker.retry import Backoff
from tasker.states import STEP_TRANSITIONS, TASK_TRANSITIONS, State
from tasker.store.database import Database


@st.composite
def dags(draw: st.DrawFn) -> TemplateDefinition:
    size = draw(st.integers(2, 9))
    steps = []
    for i in range(size):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        steps.append(
            StepSpec(
                name=f"s{i}",
                handler="tasker.builtin_handlers:noop",
                depends_on=tuple(f"s{p}" for p in sorted(parents)),
                max_attempts=draw(st.integers(1, 3)),
                backoff=Backoff(base_seconds=1.0, max_seconds=8.0, jitter=0.0),
            )
        )
    return TemplateDefinition("default", "random_dag", "1.0.0", tuple(steps))


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "claim",
                "succeed",
                "fail",
                "fail_permanently",
                "tick",
                "expire",
                "retry_step",
                "resolve",
                "cancel",
                "retry_task",
            ]
        ),
        st.integers(0, 8),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(template=dags(), actions=ACTIONS, delay=st.sampled_from([None, None, 0.0, 3.0, 20.0]))
def test_claimable_state_matches_ready_for_execution(
    database: Database,
    template: TemplateDefinition,
    actions: list[tuple[str, int]],
    delay: float | None,
) -> None:
    clock = FakeClock()
    registry = TemplateRegistry()
    registry.add(template)
    tasker = Tasker(database, registry, clock=clock)
    # Examples share the test's database: each works on its own task only.
    # A delayed start: resolving steps by hand before it must not start their children.
    task_id, _ = tasker.create_task(
        TaskRequest("random_dag", {"example": id(actions)}, delay_seconds=delay)
    )
    held: list[Any] = []
    names = [s.name for s in template.steps]
    for action, pick in actions:
        if action == "claim":
            held += tasker.claim("w", 2, task_id=task_id, lease_seconds=30)
        elif action in ("succeed", "fail", "fail_permanently") and held:
            claim = held.pop(pick % len(held))
            if action == "succeed":
                outcome = Outcome(claim.step_id, task_id, claim.claim_token, results={})
            else:
                outcome = Outcome(
                    claim.step_id,
                    task_id,
                    claim.claim_token,
                    error={"class": "E", "message": "m", "traceback": None},
                    permanent=action == "fail_permanently",
                )
            tasker.record([outcome])
        elif action == "tick":
            clock.advance(pick + 1)
        elif action == "expire":
            clock.advance(31)
            tasker.reap_expired_leases()
            held.clear()
        else:
            name = names[pick % len(names)]
            try:
                if action == "retry_step":
                    tasker.retry_step(task_id, name)
                elif action == "resolve":
                    tasker.resolve_step(task_id, name, reason="test")
                elif action == "cancel":
                    tasker.cancel_task(task_id)
                else:
                    tasker.retry_task(task_id)
            except InvalidTransition:
                pass
        check_agreement(tasker, task_id)
    check_history(tasker, task_id, template)


def check_agreement(tasker: Tasker, task_id: int) -> None:
    now = tasker.now()
    rows = tasker.read(lambda c: c.fetch_all("task_step_views", task_ids=[task_id]))
    claimable = {r["id"]: r["claimable_at"] is not None and r["claimable_at"] <= now for r in rows}
    readiness = {r.workflow_step_id: r for r in tasker.readiness(task_id)}
    for step_id, ready_now in claimable.items():
        row = readiness[step_id]
        assert row.ready_for_execution == ready_now, (row, ready_now)
        assert (row.blocking_reason is None) == row.ready_for_execution
    # and the task's status follows its steps
    status = tasker.task_status(task_id)
    states = [r.current_state for r in readiness.values()]
    if all(s in ("complete", "resolved_manually") for s in states) and states:
        assert status in ("complete", "resolved_manually", "cancelled")
    if status == "complete":
        assert all(s in ("complete", "resolved_manually") for s in states)
    if status == "error":
        assert not any(r.ready_for_execution for r in readiness.values())
        assert "in_progress" not in states


def check_history(tasker: Tasker, task_id: int, template: TemplateDefinition) -> None:
    """The task has exactly the template's steps and edges, and its whole history only
    ever followed the state tables, one row per change, in sort-key order."""
    task = tasker.get_task(task_id)
    assert {s["name"]: tuple(s["depends_on"]) for s in task["steps"]} == {
        spec.name: spec.depends_on for spec in template.steps
    }
    histories: dict[str | None, list[dict[str, Any]]] = {}
    for row in tasker.transitions(task_id):
        histories.setdefault(row["step_name"], []).append(row)
    for name, rows in histories.items():
        table = TASK_TRANSITIONS if name is None else STEP_TRANSITIONS
        assert [r["sort_key"] for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0]["from_state"] is None and rows[0]["to_state"] == "pending"
        for before, after in pairwise(rows):
            assert after["from_state"] == before["to_state"]
            assert State(after["to_state"]) in table[State(after["from_state"])], (name, after)
