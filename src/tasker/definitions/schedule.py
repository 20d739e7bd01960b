"""Cron schedules of a template: the declaration and the rules of its ticks (pure).

A schedule fires its template at each tick of a 5-field cron expression read in an IANA
time zone. Cron parsing and daylight-saving time follow ``cronsim`` (it behaves as
Debian's cron: a time skipped when clocks go forward fires at the first minute after
the gap; a time repeated when they go back fires once, except for jobs that run every
hour or more often, which follow real time). Ticks are kept in UTC.

Catching up after ticks were missed (every worker down, or the schedule just resumed is
not catching up: see ``resume``):

- ``none``: a tick fires only when a worker sees it within ``MISSED_AFTER_SECONDS``;
  older ones are skipped;
- ``latest``: the most recent missed tick fires, once; older ones are skipped;
- ``all``: every missed tick fires, oldest first, the most recent ``MAX_CATCHUP_TICKS``
  of them at most.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

CATCHUP_MODES = ("none", "latest", "all")
MAX_CATCHUP_TICKS = 100
MISSED_AFTER_SECONDS = 60.0
"""A tick not fired this long after its time counts as missed (``catchup: none``)."""


@dataclass(frozen=True)
class ScheduleSpec:
    """One ``schedules:`` entry of a template."""

    name: str
    cron: str  # 5 fields: minute hour day-of-month month day-of-week
    timezone: str = "UTC"  # an IANA zone, the cron fields are read in it
    context: dict[str, Any] = field(default_factory=dict)  # each task's context
    catchup: str = "latest"  # CATCHUP_MODES

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "context": copy.deepcopy(self.context),
            "catchup": self.catchup,
        }


def cron_problem(cron: str, timezone: str) -> str | None:
    """Why ``cron`` in ``timezone`` cannot be a schedule, or None when it can."""
    if not isinstance(cron, str) or len(cron.split()) != 5:
        return f"cron must be 5 fields (minute hour day month weekday), got {cron!r}"
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return f"unknown time zone {timezone!r} (an IANA name such as UTC or Europe/Paris)"
    try:
        next(CronSim(cron, datetime(2026, 1, 1, tzinfo=zone)))
    except (CronSimError, StopIteration) as exc:
        return f"cron {cron!r} is not valid: {exc or 'it never fires'}"
    return None


def next_tick(spec: ScheduleSpec, after: datetime) -> datetime:
    """The first tick strictly after ``after``, in UTC."""
    local = after.astimezone(ZoneInfo(spec.timezone))
    return next(CronSim(spec.cron, local)).astimezone(UTC)


def due_ticks(spec: ScheduleSpec, after: datetime, now: datetime) -> list[datetime]:
    """The ticks to fire now, oldest first: of those in ``(after, now]``, what the
    schedule's ``catchup`` keeps. Costs at most ``MAX_CATCHUP_TICKS`` steps of the cron
    iterator however long the schedule was not fired."""
    zone = ZoneInfo(spec.timezone)
    # Backwards from the second after now: CronSim gives the ticks strictly before its
    # start, so a tick at exactly now counts.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    backwards = CronSim(spec.cron, start.astimezone(zone), reverse=True)
    wanted = 1 if spec.catchup != "all" else MAX_CATCHUP_TICKS
    ticks: list[datetime] = []
    for tick in backwards:
        tick = tick.astimezone(UTC)
        if tick <= after or len(ticks) == wanted:
            break
        ticks.append(tick)
    if spec.catchup == "none":
        ticks = [t for t in ticks if (now - t).total_seconds() <= MISSED_AFTER_SECONDS]
    return ticks[::-1]
