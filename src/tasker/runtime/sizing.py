"""How many steps a worker holds in flight, and claims at once, when it is not told.

The rule: hold about :data:`TARGET_SECONDS` of handler work, between :data:`FLOOR` and
:data:`CEILING` steps. A worker of short handlers is bound by round trips, not by its
handlers: it needs many steps in flight to claim and record them in large batches (the
throughput benchmark: 200 in flight run no-op steps 3.6 times as fast as 10). A worker of
long handlers gains nothing from holding more steps than it runs, and every extra one it
holds is a step another worker could have started: it stays at the floor.

The handler time is a moving average of what the handlers took (``Outcome``'s
``duration_seconds``: the handler alone, not the queueing and recording around it), so
the size follows a workload that changes. Until the first step ends the worker holds the
floor. ``--concurrency`` (``WorkerOptions.concurrency``) fixes the size instead, and
``batch_size`` the claim size; the claim size otherwise follows the size, up to
:data:`BATCH_CEILING`.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOOR = 10
CEILING = 200
BATCH_CEILING = 100
TARGET_SECONDS = 0.5
SMOOTHING = 0.05  # the weight of each new duration in the moving average


@dataclass
class Sizing:
    fixed_concurrency: int | None = None
    fixed_batch_size: int | None = None
    mean_seconds: float | None = None  # the handlers' moving-average duration

    def __post_init__(self) -> None:
        for name in ("fixed_concurrency", "fixed_batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name.removeprefix('fixed_')} must be at least 1, got {value}")

    @property
    def adaptive(self) -> bool:
        return self.fixed_concurrency is None

    def observe(self, seconds: float | None) -> None:
        """One handler ran for ``seconds`` (None: it did not run, e.g. it timed out)."""
        if seconds is None or not seconds >= 0:  # also skips nan
            return
        if self.mean_seconds is None:
            self.mean_seconds = seconds
        else:
            self.mean_seconds += SMOOTHING * (seconds - self.mean_seconds)

    @property
    def concurrency(self) -> int:
        """Steps in flight at most, now."""
        if self.fixed_concurrency is not None:
            return self.fixed_concurrency
        if self.mean_seconds is None:
            return FLOOR
        if self.mean_seconds <= TARGET_SECONDS / CEILING:
            return CEILING
        return max(FLOOR, min(CEILING, int(TARGET_SECONDS / self.mean_seconds)))

    @property
    def batch_size(self) -> int:
        """Steps claimed in one round trip at most, now."""
        if self.fixed_batch_size is not None:
            return self.fixed_batch_size
        return min(BATCH_CEILING, self.concurrency)
