"""Schedules: storing the ones templates declare, firing due ticks, pausing."""

from __future__ import annotations

from typing import Any

from tasker.engine import schedules as scheduling
from tasker.facade.core import Core
from tasker.payloads import check_text


class Schedules(Core):
    def sync_schedules(self) -> int:
        """Store the schedules this process's templates declare (a worker does at start)."""
        declared = scheduling.declared(self.registry.all())
        if not declared:
            return 0
        return self.write(lambda c: scheduling.sync_schedules(c, declared, self.now()))

    def fire_schedules(self) -> list[scheduling.Fired]:
        """Fire the due ticks of the schedules this process's templates declare, unless
        another process is firing (workers call it every second)."""
        declared = scheduling.declared(self.registry.all())
        if not declared:
            return []
        max_steps = self.settings.max_task_steps
        return self.write(
            lambda c: scheduling.fire_due_schedules(c, declared, self.now(), max_steps=max_steps)
        )

    def schedules(self) -> list[dict[str, Any]]:
        """Every stored schedule as JSON, with its next fire time."""
        rows = self.read(lambda c: c.fetch_all("list_schedules"))
        return [scheduling.schedule_json(row) for row in rows]

    def set_schedule_paused(
        self,
        namespace: str,
        template: str,
        schedule: str,
        *,
        paused: bool,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Pause or resume a stored schedule, with its history row and event."""
        if reason is not None:
            check_text(reason, "reason")
        row = self.write(
            lambda c: scheduling.set_paused(
                c, namespace, template, schedule, paused=paused, now=self.now(),
                actor=actor, reason=reason,
            )
        )  # fmt: skip
        return scheduling.schedule_json(row)
