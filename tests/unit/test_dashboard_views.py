"""What the dashboard's pages say and draw, without a server: blocking reasons in words,
relative times, results cut to size, and the DAG's layout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tasker.api.dashboard import views
from tasker.store.readiness import StepReadiness

NOW = datetime(2026, 1, 1, 14, 2, 31, tzinfo=UTC)


def readiness(**fields: object) -> StepReadiness:
    row = StepReadiness(
        workflow_step_id=1,
        task_id=1,
        name="charge",
        current_state="pending",
        dependencies_satisfied=True,
        retry_eligible=True,
        ready_for_execution=False,
        total_parents=2,
        completed_parents=1,
        attempts=0,
        max_attempts=5,
        next_retry_at=None,
        last_attempted_at=None,
        blocking_reason=None,
    )
    return replace(row, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (41, "in 41 s"),
        (-41, "41 s ago"),
        (600, "in 10 min"),
        (7200, "in 2 h"),
        (-3 * 86400, "3 d ago"),
    ],
)
def test_in_seconds_says_how_far_a_time_is(seconds: int, words: str) -> None:
    assert views.in_seconds(NOW + timedelta(seconds=seconds), NOW) == words


def test_backoff_names_the_time_and_how_long_to_wait() -> None:
    row = readiness(
        current_state="error",
        blocking_reason="waiting_for_backoff",
        attempts=2,
        next_retry_at=NOW + timedelta(seconds=41),
    )
    blocking = views.blocking_reason(row, now=NOW)
    assert blocking is not None
    assert blocking.text == (
        "waiting for backoff until 2026-01-01T14:03:12Z (in 41 s), attempt 2/5 failed"
    )
    assert blocking.at == NOW + timedelta(seconds=41)


@pytest.mark.parametrize(
    ("reason", "attempts", "words"),
    [
        ("retries_exhausted", 5, "retries exhausted: 5/5"),
        ("not_retryable", 1, "failed for good (not retryable) after attempt 1/5"),
        ("in_progress", 3, "running: attempt 3/5"),
        ("no_worker_for_handler", 0, "no live worker serves handler shop:charge"),
        ("waiting_for_signal", 0, "waiting for a signal"),
        ("skipped", 0, "skipped: its branch was not taken"),
        ("some_new_reason", 0, "some new reason"),
    ],
)
def test_each_blocking_reason_reads_as_words(reason: str, attempts: int, words: str) -> None:
    row = readiness(blocking_reason=reason, attempts=attempts)
    blocking = views.blocking_reason(row, now=NOW, handler="shop:charge")
    assert blocking is not None and blocking.text == words


def test_a_waiting_signal_is_named() -> None:
    row = readiness(blocking_reason="waiting_for_signal")
    blocking = views.blocking_reason(row, now=NOW, signal="approval")
    assert blocking is not None and blocking.text == "waiting for signal approval"


def test_waiting_parents_are_named() -> None:
    row = readiness(blocking_reason="dependencies_not_satisfied", dependencies_satisfied=False)
    waiting = views.waiting_parents(
        ["validate", "reserve"], {"validate": "complete", "reserve": "error"}, ["complete"]
    )
    blocking = views.blocking_reason(row, now=NOW, waiting_on=waiting)
    assert blocking is not None
    assert blocking.text == "waiting for reserve (1/2 parents done)"


def test_a_finished_step_has_no_reason_and_a_ready_one_waits_for_a_worker() -> None:
    assert views.blocking_reason(readiness(blocking_reason="finished"), now=NOW) is None
    ready = views.blocking_reason(readiness(ready_for_execution=True), now=NOW)
    assert ready is not None and ready.text.startswith("ready")


def test_large_results_are_cut_and_small_ones_kept_whole() -> None:
    text, cut = views.preview_json({"b": 1, "a": [1, 2]})
    assert not cut and text.startswith('{\n  "a"')
    text, cut = views.preview_json({"blob": "x" * 10_000}, limit=100)
    assert cut and len(text) == 100


def test_the_dag_is_laid_out_in_columns_by_level_with_an_edge_per_parent() -> None:
    steps = [
        views.DagInput("start", "complete", 0, []),
        views.DagInput("left", "error", 1, ["start"]),
        views.DagInput("right", "pending", 1, ["start"]),
        views.DagInput("a_rather_long_step_name_here", "pending", 2, ["left", "right"]),
    ]
    layout = views.layout_dag(steps)
    nodes = {n.name: n for n in layout.nodes}
    assert (
        nodes["start"].x
        < nodes["left"].x
        == nodes["right"].x
        < nodes["a_rather_long_step_name_here"].x
    )
    assert nodes["left"].y < nodes["right"].y
    assert len(layout.edges) == 4
    assert nodes["a_rather_long_step_name_here"].label.endswith("…")
    assert len(nodes["a_rather_long_step_name_here"].label) == views.LABEL_CHARS
    assert layout.width >= nodes["a_rather_long_step_name_here"].x + views.NODE_WIDTH
    assert layout.height >= nodes["right"].y + views.NODE_HEIGHT


def test_a_map_group_reads_as_its_counts_and_is_drawn_as_one_node() -> None:
    words = views.map_summary("extract.files", {"total": 4, "complete": 3, "error": 1})
    assert words == "map over extract.files: 4 instances (3 complete, 1 error)"
    assert views.map_summary(None, {"total": 1}) == "1 instance"
    layout = views.layout_dag(
        [views.DagInput("transform_every_file", "in_progress", 0, [], count=1200)]
    )
    assert layout.nodes[0].label == "transform_every… \N{MULTIPLICATION SIGN}1200"
    assert len(layout.nodes[0].label) == views.LABEL_CHARS
