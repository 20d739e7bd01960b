"""Reading the durable event log from another process: named consumers with a cursor.

A consumer's position is stored in the database, so it resumes where it left off
after a restart. Delivery is at-least-once (the position moves after handling) and
in log order, which is per-task causal order. One process at a time holds a named
consumer (a lease), so running several copies does not deliver events twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from tasker.events.bus import EventBus
from tasker.facade import Tasker
from tasker.serialization import event_json

Event = dict[str, Any]


class EventConsumer:
    """A named reader of the event log with a persisted position."""

    def __init__(
        self, tasker: Tasker, name: str, *, lease_seconds: float = 30.0, owner: str | None = None
    ):
        self.tasker = tasker
        self.name = name
        self.lease_seconds = lease_seconds
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.position: int | None = None

    def acquire(self) -> bool:
        """Take or renew the lease; False while another process holds it."""
        now = self.tasker.now()
        row = self.tasker.write(
            lambda c: c.fetch_one(
                "acquire_consumer",
                name=self.name,
                owner=self.owner,
                lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                now=now,
            )
        )
        if row is None:
            self.position = None
            return False
        self.position = row["position"]
        return True

    def poll(self, limit: int = 100) -> list[Event]:
        """The next events after the stored position (empty without the lease)."""
        if not self.acquire():
            return []
        assert self.position is not None
        rows = self.tasker.read(
            lambda c: c.fetch_all("events_after", after_id=self.position, task_id=None, limit=limit)
        )
        return [event_json(r) for r in rows]

    def commit(self, event_id: int) -> None:
        """Everything up to ``event_id`` has been handled."""
        now = self.tasker.now()
        self.tasker.write(
            lambda c: c.execute(
                "save_consumer_position",
                name=self.name,
                owner=self.owner,
                position=event_id,
                now=now,
            )
        )
        self.position = event_id

    def release(self) -> None:
        """Give up the lease (a clean stop); the position stays, and so do the events after
        it (``tasker.engine.retention``) unless the consumer is not seen again for long."""
        now = self.tasker.now()
        self.tasker.write(
            lambda c: c.execute("release_consumer", name=self.name, owner=self.owner, now=now)
        )


class EventDispatcher:
    """Delivers the event log to an ``EventBus``'s subscribers, in order, at least once.

    Runs beside a worker (or alone); it never shares a thread with step execution, so a
    slow or failing subscriber cannot slow steps down.
    """

    def __init__(
        self,
        tasker: Tasker,
        bus: EventBus,
        *,
        name: str = "subscribers",
        poll_interval_seconds: float = 0.5,
        batch_size: int = 100,
    ):
        self.consumer = EventConsumer(tasker, name)
        self.bus = bus
        self.poll_interval_seconds = poll_interval_seconds
        self.batch_size = batch_size
        self.delivered = 0
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        try:
            while not self._stopping:
                if not await self.run_once():
                    await asyncio.sleep(self.poll_interval_seconds)
        finally:
            await asyncio.to_thread(self.consumer.release)

    async def drain(self, max_batches: int = 1000) -> None:
        """Deliver until caught up (a burst worker calls this before it exits)."""
        try:
            for _ in range(max_batches):
                if not await self.run_once():
                    return
        finally:
            await asyncio.to_thread(self.consumer.release)

    async def run_once(self) -> int:
        """Deliver one batch; returns how many events it handled."""
        events = await asyncio.to_thread(self.consumer.poll, self.batch_size)
        for event in events:
            await self.bus.deliver(event)
            self.delivered += 1
        if events:
            await asyncio.to_thread(self.consumer.commit, events[-1]["id"])
        return len(events)
