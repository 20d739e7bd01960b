"""Task and step state machines, as data.

The allowed-transition tables below are the single source of truth: the engine
checks every change against them and ``docs/architecture.md`` carries a mermaid
diagram that a test compares with them.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """One vocabulary for tasks and steps."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    RESOLVED_MANUALLY = "resolved_manually"
    SKIPPED = "skipped"  # a step on a branch not taken; never a task


P, R, C, E, X, M, S = (
    State.PENDING,
    State.IN_PROGRESS,
    State.COMPLETE,
    State.ERROR,
    State.CANCELLED,
    State.RESOLVED_MANUALLY,
    State.SKIPPED,
)

STEP_TRANSITIONS: dict[State, frozenset[State]] = {
    # pending -> skipped: a branch not taken, or a join whose parents' skipping skips it;
    # pending -> error: a wait for a signal that timed out.
    P: frozenset({R, X, M, S, E}),
    # in_progress -> error covers a failed attempt and an expired lease alike.
    R: frozenset({C, E, X}),
    # error -> in_progress is the automatic retry, error -> pending the manual one.
    E: frozenset({R, P, M, X}),
    C: frozenset(),
    X: frozenset(),
    M: frozenset(),
    S: frozenset(),
}

TASK_TRANSITIONS: dict[State, frozenset[State]] = {
    P: frozenset({R, X, E}),
    R: frozenset({C, E, X}),
    E: frozenset({R, M, X}),
    C: frozenset(),
    X: frozenset(),
    M: frozenset(),
    S: frozenset(),  # no transition leads here: a task is never skipped
}

# The named sets of states; every module uses these, none spells out its own.
SATISFIES_DEPENDENCY = frozenset({C, M})
"""A step here lets its children run (by the ``join`` rules: a skipped parent does not)."""
COUNTS_AS_DONE = frozenset({C, M, S})
"""A step here counts towards its task's completion."""
FINAL = frozenset({C, X, M, S})
"""A task or step here never leaves it."""
SETTLED = frozenset({C, E, X, M})
"""Nothing more happens to a task here without a person (``error`` may be retried)."""


def can_transition(table: dict[State, frozenset[State]], current: State, target: State) -> bool:
    """True when ``current -> target`` is allowed. Staying put is always allowed (a no-op)."""
    return current == target or target in table[current]


def mermaid(table: dict[State, frozenset[State]]) -> str:
    """The table as a mermaid ``stateDiagram-v2``, edges sorted for stable output."""
    lines = ["stateDiagram-v2", "    [*] --> pending"]
    for src in State:
        for dst in sorted(table[src], key=lambda s: list(State).index(s)):
            lines.append(f"    {src.value} --> {dst.value}")
    reached = {P}.union(*table.values())
    for final in State:
        if not table[final] and final in reached:  # a task is never skipped: left out
            lines.append(f"    {final.value} --> [*]")
    return "\n".join(lines)
