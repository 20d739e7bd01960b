"""The rule for a worker's steps in flight when it is not told (tasker.runtime.sizing)."""

from __future__ import annotations

import pytest

from tasker.runtime.sizing import BATCH_CEILING, CEILING, FLOOR, Sizing
from tasker.runtime.worker import WorkerOptions


def fed(*durations: float | None) -> Sizing:
    sizing = Sizing()
    for seconds in durations:
        sizing.observe(seconds)
    return sizing


@pytest.mark.parametrize(
    ("durations", "concurrency", "batch"),
    [
        ((), FLOOR, FLOOR),  # nothing seen yet: the floor
        ((0.0,), CEILING, BATCH_CEILING),  # no-op handlers: the ceiling, batches of 100
        ((0.0001,) * 50, CEILING, BATCH_CEILING),
        ((0.005,) * 50, 100, 100),  # 5 ms: 0.5 s of work is 100 steps
        ((0.02,) * 50, 25, 25),
        ((0.2,) * 50, FLOOR, FLOOR),  # long handlers never hold more than the floor
        ((30.0,), FLOOR, FLOOR),
        ((None, float("nan"), -1.0), FLOOR, FLOOR),  # not durations: ignored
    ],
)
def test_the_size_holds_about_half_a_second_of_work(
    durations: tuple[float | None, ...], concurrency: int, batch: int
) -> None:
    sizing = fed(*durations)
    assert (sizing.concurrency, sizing.batch_size) == (concurrency, batch)


def test_the_size_follows_a_workload_that_changes() -> None:
    # Given short handlers, then a long run of 100 ms ones
    sizing = fed(*(0.0001,) * 100)
    assert sizing.concurrency == CEILING
    for _ in range(200):
        sizing.observe(0.1)
    # Then the size comes down to the floor (0.5 s of those is 5 steps)
    assert sizing.concurrency == FLOOR


def test_fixed_sizes_are_kept_whatever_the_handlers_take() -> None:
    sizing = Sizing(fixed_concurrency=7)
    for _ in range(10):
        sizing.observe(0.0)
    assert (sizing.adaptive, sizing.concurrency, sizing.batch_size) == (False, 7, 7)
    assert Sizing(fixed_concurrency=300).batch_size == BATCH_CEILING
    assert Sizing(fixed_batch_size=3).batch_size == 3


def test_worker_options_size_a_process_pool_at_the_floor_and_refuse_zero() -> None:
    assert WorkerOptions().sizing().adaptive
    assert WorkerOptions(pool="process").sizing().concurrency == FLOOR
    assert WorkerOptions(pool="process", concurrency=4).sizing().concurrency == 4
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        WorkerOptions(concurrency=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        WorkerOptions(batch_size=0)
