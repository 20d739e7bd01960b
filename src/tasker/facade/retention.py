"""Retention: deleting old events and finished tasks in short batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tasker.engine import retention
from tasker.facade.core import Core
from tasker.store.database import Connection


class Retention(Core):
    def prune_events(
        self,
        older_than: timedelta,
        *,
        batch_size: int = 1000,
        force: bool = False,
        pace: float = retention.DEFAULT_PACE,
    ) -> retention.EventPrune:
        """Delete events older than ``older_than``, one short transaction per batch, but
        none that an active durable consumer has not read yet, unless ``force``. Between
        batches it rests, so deleting takes at most ``pace`` of the time (1: back to back).
        Says how many were deleted, and how many were kept for which consumer."""
        retention.check_pace(pace)
        now = self.now()
        before = now - older_than
        total = retention.paced(
            lambda: self.write(
                lambda c: retention.prune_events_batch(
                    c, before=before, now=now, limit=batch_size, force=force
                )
            ),
            batch_size=batch_size,
            pace=pace,
        )
        if force:
            return retention.EventPrune(total)
        kept = self.read(lambda c: retention.kept_for_consumers(c, before=before, now=now))
        return replace(kept, deleted=total)

    def prune_tasks(
        self,
        finished_before: datetime,
        *,
        batch_size: int = 200,
        pace: float = retention.DEFAULT_PACE,
    ) -> int:
        """Delete finished tasks completed before a time, with their steps, history and
        events, one short transaction per batch, resting between batches so that deleting
        takes at most ``pace`` of the time (1: back to back)."""
        retention.check_pace(pace)

        def batch(conn: Connection) -> int:
            rows = conn.fetch_all("finished_tasks_before", before=finished_before, limit=batch_size)
            ids = [r["id"] for r in rows]
            if ids:
                conn.execute("delete_task_events", task_ids=ids)
                conn.execute("delete_tasks", task_ids=ids)
            return len(ids)

        return retention.paced(lambda: self.write(batch), batch_size=batch_size, pace=pace)
