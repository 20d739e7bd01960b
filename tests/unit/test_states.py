"""The state machines against the contract, pair by pair: every allowed transition is
allowed and every other one refused, for steps and for tasks."""

from __future__ import annotations

from itertools import product

import pytest

from tasker.states import STEP_TRANSITIONS, TASK_TRANSITIONS, State, can_transition


def _pairs(text: str) -> frozenset[tuple[State, State]]:
    """``"a->b|c, d->e"`` as the set of (from, to) pairs."""
    found = set()
    for arrow in text.split(","):
        source, _, targets = arrow.strip().partition("->")
        found |= {(State(source), State(target)) for target in targets.split("|")}
    return frozenset(found)


# Written out from the contract (DESIGN.md, "States"; Part 3 adds `skipped` and a signal
# wait that times out, pending -> error), not from states.py.
CONTRACT = {
    "step": _pairs(
        "pending->in_progress|cancelled|resolved_manually|skipped|error,"
        " in_progress->complete|error|cancelled,"
        " error->in_progress, error->pending, error->resolved_manually|cancelled"
    ),
    "task": _pairs(
        "pending->in_progress|cancelled|error,"
        " in_progress->complete|error|cancelled,"
        " error->in_progress, error->resolved_manually|cancelled"
    ),
}
TABLES = {"step": STEP_TRANSITIONS, "task": TASK_TRANSITIONS}
EVERY_PAIR = [
    pytest.param(machine, a, b, id=f"{machine}:{a}->{b}")
    for machine in ("step", "task")
    for a, b in product(State, State)
]


@pytest.mark.parametrize(("machine", "current", "target"), EVERY_PAIR)
def test_transition(machine: str, current: State, target: State) -> None:
    # Given a step or task in `current`; Then moving to `target` is allowed exactly when
    # the contract lists the pair, or it stays where it is (a no-op)
    expected = (current, target) in CONTRACT[machine] or current == target
    assert can_transition(TABLES[machine], current, target) is expected


@pytest.mark.parametrize("machine", ["step", "task"])
def test_the_final_states_have_no_way_out(machine: str) -> None:
    final = {state for state in State if not TABLES[machine][state]}
    # skipped is final for steps; a task never reaches it, so its row is empty too
    assert final == {State.COMPLETE, State.CANCELLED, State.RESOLVED_MANUALLY, State.SKIPPED}


def test_no_transition_leads_a_task_to_skipped() -> None:
    assert all(State.SKIPPED not in targets for targets in TASK_TRANSITIONS.values())


@pytest.mark.parametrize("machine", ["step", "task"])
def test_every_state_has_a_row(machine: str) -> None:
    assert set(TABLES[machine]) == set(State)
