"""The finalization decision as a table: a task's status and what its steps add up to
(done, live, failed for good) decide the state it moves to, if any."""

from __future__ import annotations

import pytest

from tasker.engine.finalization import final_state

# (task status, total, done, live, failed) -> the state the task moves to (None: stays)
TABLE = [
    pytest.param("in_progress", 3, 3, 0, 0, "complete", id="all-done"),
    pytest.param("pending", 2, 2, 0, 0, "complete", id="all-resolved-before-any-ran"),
    pytest.param("in_progress", 3, 2, 1, 0, None, id="one-still-running"),
    pytest.param("in_progress", 3, 2, 0, 1, "error", id="failed-for-good-nothing-runnable"),
    pytest.param("in_progress", 3, 1, 1, 1, None, id="failed-but-another-still-runs"),
    pytest.param("in_progress", 3, 0, 0, 3, "error", id="all-failed-for-good"),
    pytest.param("pending", 2, 0, 0, 1, "error", id="root-failed-before-start"),
    pytest.param("in_progress", 3, 1, 0, 0, None, id="nothing-runnable-nothing-failed"),
    pytest.param("in_progress", 3, 1, 2, 0, None, id="waiting-for-retry-or-parents"),
    pytest.param("error", 3, 3, 0, 0, "resolved_manually", id="failed-task-last-step-resolved"),
    pytest.param("error", 3, 2, 0, 1, None, id="failed-task-stays-failed"),
    pytest.param("error", 3, 2, 1, 0, None, id="failed-task-with-a-step-retried"),
    pytest.param("complete", 3, 3, 0, 0, None, id="complete-is-final"),
    pytest.param("cancelled", 3, 1, 0, 1, None, id="cancelled-is-final"),
    pytest.param("cancelled", 3, 3, 0, 0, None, id="cancelled-stays-even-if-all-done"),
    pytest.param("resolved_manually", 3, 3, 0, 0, None, id="resolved-is-final"),
]


@pytest.mark.parametrize(("status", "total", "done", "live", "failed", "expected"), TABLE)
def test_final_state(
    status: str, total: int, done: int, live: int, failed: int, expected: str | None
) -> None:
    # Given a task in `status` whose steps add up as counted; Then it moves to `expected`
    decided = final_state(
        status, total_steps=total, done_steps=done, live_steps=live, failed_steps=failed
    )
    assert decided == expected
