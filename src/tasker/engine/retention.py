"""Retention of the event log: old events go in small batches, but never ahead of a
durable consumer that is still reading them.

An event older than the cutoff is kept while an *active* durable consumer
(``tasker.events.EventConsumer``, the event dispatcher of every worker included) has not
read it. A consumer is active while it holds its lease or was seen within
``CONSUMER_ABANDONED_AFTER``: seen when it takes or renews its lease, saves its position
or releases the lease on a clean stop. So a consumer stopped for a deploy keeps its
events, and one abandoned long ago (its process gone, its name no longer used) holds
nothing back for ever. ``force`` prunes regardless of consumers.

Pruning can be paced (``paced``): after each full batch it rests, so that deleting takes
at most ``pace`` of the wall time, leaving the disk and the write lock to the workers for
the rest. By default batches run back to back (pace 1): with 10M finished steps, pacing
at 0.5 doubled the prune's time and did not lower the workers' latency during it, whose
tail follows checkpoints (docs/performance.md, "Pacing the prune").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasker.store.database import Connection, Row

CONSUMER_ABANDONED_AFTER = timedelta(days=7)
"""A durable consumer not seen for this long no longer holds events back."""


DEFAULT_PACE = 1.0
"""The share of a prune's wall time spent deleting: 1 runs batches back to back; 0.5 rests
as long as each batch took."""


def check_pace(pace: float) -> float:
    """``pace`` when it is a share of time in (0, 1]; ValueError naming it otherwise."""
    if not 0 < pace <= 1:  # NaN fails too
        raise ValueError(f"pace must be above 0 and at most 1, got {pace!r}")
    return pace


def paced(
    batch: Callable[[], int],
    *,
    batch_size: int,
    pace: float,
    sleep: Callable[[float], object] = time.sleep,
    timer: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``batch`` (one transaction, returning how many rows it deleted) until it deletes
    fewer than ``batch_size``; returns the total. After each full batch, rest so that the
    batches take at most ``pace`` of the time (1: back to back)."""
    check_pace(pace)
    total = 0
    while True:
        started = timer()
        deleted = batch()
        total += deleted
        if deleted < batch_size:
            return total
        if pace < 1:
            sleep((timer() - started) * (1 - pace) / pace)


@dataclass(frozen=True)
class EventPrune:
    """What pruning did: ``deleted`` events; ``kept`` events older than the cutoff left
    for ``consumer``, the active durable consumer furthest behind (None when none was)."""

    deleted: int
    kept: int = 0
    consumer: str | None = None


def slowest_consumer(conn: Connection, now: datetime) -> Row | None:
    """The active durable consumer furthest behind (``name``, ``position``), or None."""
    return conn.fetch_one(
        "slowest_active_consumer", now=now, seen_since=now - CONSUMER_ABANDONED_AFTER
    )


def prune_events_batch(
    conn: Connection, *, before: datetime, now: datetime, limit: int, force: bool
) -> int:
    """Delete up to ``limit`` events created before ``before`` that every active consumer
    has read (any, with ``force``); returns how many. The bound is read in the same
    transaction: a consumer only moves forward, so it never loses an event to it."""
    slowest = None if force else slowest_consumer(conn, now)
    return conn.execute(
        "prune_events",
        before=before,
        up_to_id=slowest["position"] if slowest is not None else None,
        limit=limit,
    )


def kept_for_consumers(conn: Connection, *, before: datetime, now: datetime) -> EventPrune:
    """The events created before ``before`` that pruning kept for the slowest consumer
    (``deleted`` is left 0 for the caller to fill in)."""
    slowest = slowest_consumer(conn, now)
    if slowest is None:
        return EventPrune(0)
    row = conn.fetch_one("count_events_after", after_id=slowest["position"], before=before)
    kept = int(row["n"]) if row is not None else 0
    return EventPrune(0, kept, slowest["name"] if kept else None)
