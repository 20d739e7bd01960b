"""Pruning is paced: after each full batch it rests so that deleting takes at most ``pace``
of the wall time, and it stops after the first batch that deletes less than a batch."""

from __future__ import annotations

import math

import pytest

from tasker.engine.retention import paced


class Batches:
    """Batches that delete ``sizes`` rows in turn, each taking ``seconds`` on a fake
    timer; what the pacer slept is kept in ``slept``."""

    def __init__(self, sizes: list[int], seconds: float):
        self.sizes = list(sizes)
        self.seconds = seconds
        self.now = 0.0
        self.slept: list[float] = []

    def batch(self) -> int:
        self.now += self.seconds
        return self.sizes.pop(0)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def timer(self) -> float:
        return self.now


def run(batches: Batches, pace: float, batch_size: int = 10) -> int:
    return paced(
        batches.batch, batch_size=batch_size, pace=pace, sleep=batches.sleep, timer=batches.timer
    )


def test_a_paced_prune_rests_after_each_full_batch_for_its_share_of_the_time() -> None:
    batches = Batches([10, 10, 10, 4], seconds=0.2)
    assert run(batches, pace=0.25) == 34
    # 0.2 s deleting, then 0.6 s resting: deleting is a quarter of the time. No rest after
    # the last batch, which deleted less than a batch.
    assert batches.slept == pytest.approx([0.6, 0.6, 0.6])
    assert batches.now == pytest.approx(4 * 0.2 + 3 * 0.6)
    assert batches.sizes == []


def test_at_pace_one_the_batches_run_back_to_back() -> None:
    batches = Batches([10, 10, 0], seconds=0.2)
    assert run(batches, pace=1.0) == 20
    assert batches.slept == []


def test_a_prune_with_nothing_to_delete_runs_one_batch_and_never_rests() -> None:
    batches = Batches([0], seconds=0.2)
    assert run(batches, pace=0.5) == 0
    assert batches.slept == []


@pytest.mark.parametrize("pace", [0.0, -0.5, 1.5, math.nan, math.inf])
def test_a_pace_that_is_not_a_share_of_time_is_refused_before_anything_is_deleted(
    pace: float,
) -> None:
    batches = Batches([10, 0], seconds=0.2)
    with pytest.raises(ValueError, match="pace must be above 0 and at most 1"):
        run(batches, pace=pace)
    assert batches.sizes == [10, 0]
