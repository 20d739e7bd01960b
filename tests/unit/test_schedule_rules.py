"""Cron schedules, the pure part: expressions, zones, daylight-saving time, catch-up
(tasker.definitions.schedule), and the template keys that declare them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasker.definitions.parse import parse_template
from tasker.definitions.schedule import (
    MAX_CATCHUP_TICKS,
    ScheduleSpec,
    cron_problem,
    due_ticks,
    next_tick,
)
from tasker.exceptions import TemplateError

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "says"),
    [
        ("* * * *", "UTC", "5 fields"),
        ("0 0 * * * *", "UTC", "5 fields"),
        ("61 * * * *", "UTC", "not valid"),
        ("0 25 * * *", "UTC", "not valid"),
        ("0 * * * *", "Mars/Olympus", "unknown time zone"),
        ("0 * * * *", "", "unknown time zone"),
    ],
)
def test_bad_expressions_and_zones_are_explained(cron: str, zone: str, says: str) -> None:
    problem = cron_problem(cron, zone)
    assert problem is not None and says in problem


def test_next_tick_is_strictly_after_and_in_utc() -> None:
    hourly = ScheduleSpec("h", "0 * * * *")
    assert next_tick(hourly, T0) == T0 + timedelta(hours=1)
    assert next_tick(hourly, T0 - timedelta(microseconds=1)) == T0


def test_a_local_time_skipped_by_dst_fires_just_after_the_gap() -> None:
    # Europe/Berlin springs forward at 02:00 on 2026-03-29: 02:30 does not exist that day
    nightly = ScheduleSpec("n", "30 2 * * *", timezone="Europe/Berlin")
    assert next_tick(nightly, utc("2026-03-28T12:00:00+01:00")) == utc("2026-03-29T03:00:00+02:00")
    assert next_tick(nightly, utc("2026-03-29T12:00:00+02:00")) == utc("2026-03-30T02:30:00+02:00")


def test_a_local_time_repeated_by_dst_fires_once_and_hourly_follows_real_time() -> None:
    # Europe/Berlin falls back at 03:00 on 2026-10-25: 02:00-03:00 happens twice
    nightly = ScheduleSpec("n", "30 2 * * *", timezone="Europe/Berlin")
    start, end = utc("2026-10-24T12:00:00+02:00"), utc("2026-10-26T12:00:00+01:00")
    assert due_ticks(
        ScheduleSpec("n", nightly.cron, nightly.timezone, catchup="all"), start, end
    ) == [
        utc("2026-10-25T02:30:00+02:00"),
        utc("2026-10-26T02:30:00+01:00"),
    ]
    hourly = ScheduleSpec("h", "0 * * * *", timezone="Europe/Berlin", catchup="all")
    night = due_ticks(hourly, utc("2026-10-25T00:30:00+02:00"), utc("2026-10-25T03:30:00+01:00"))
    assert len(night) == 4  # 01:00+02, 02:00+02, 02:00+01, 03:00+01: one per real hour


@pytest.mark.parametrize(
    ("catchup", "fired"), [("none", []), ("latest", [5]), ("all", [1, 2, 3, 4, 5])]
)
def test_catchup_after_five_missed_hours(catchup: str, fired: list[int]) -> None:
    spec = ScheduleSpec("h", "0 * * * *", catchup=catchup)
    now = T0 + timedelta(hours=5, minutes=30)
    assert due_ticks(spec, T0, now) == [T0 + timedelta(hours=h) for h in fired]


@pytest.mark.parametrize("catchup", ["none", "latest", "all"])
def test_a_tick_seen_on_time_fires_whatever_the_catchup(catchup: str) -> None:
    spec = ScheduleSpec("h", "0 * * * *", catchup=catchup)
    tick = T0 + timedelta(hours=1)
    assert due_ticks(spec, T0, tick) == [tick]  # at exactly its time
    assert due_ticks(spec, T0, tick + timedelta(seconds=59)) == [tick]
    assert due_ticks(spec, tick, tick + timedelta(seconds=59)) == []  # already fired


def test_catchup_all_is_capped_at_the_latest_100_ticks() -> None:
    # A year of missed minutes: only the latest 100 fire, found without walking the year
    spec = ScheduleSpec("m", "* * * * *", catchup="all")
    now = T0 + timedelta(days=365)
    ticks = due_ticks(spec, T0, now)
    assert len(ticks) == MAX_CATCHUP_TICKS == 100
    assert ticks[-1] == now and ticks[0] == now - timedelta(minutes=99)


# --- the template keys ----------------------------------------------------------------


def template(**schedule: Any) -> dict[str, Any]:
    return {
        "name": "report",
        "context_schema": {"type": "object", "required": ["kind"]},
        "schedules": [
            {"name": "hourly", "cron": "0 * * * *", "context": {"kind": "x"}, **schedule}
        ],
        "steps": [{"name": "a", "handler": "tasker.builtin_handlers:noop"}],
    }


def test_a_schedule_gets_its_defaults_and_round_trips() -> None:
    parsed = parse_template(template())
    assert parsed.schedules == (
        ScheduleSpec("hourly", "0 * * * *", "UTC", {"kind": "x"}, "latest"),
    )
    assert parse_template(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"cron": "every hour"}, "schedule 'hourly': cron must be 5 fields"),
        ({"timezone": "Europe/Atlantis"}, "schedule 'hourly': unknown time zone"),
        ({"catchup": "some"}, "schedule 'hourly': catchup must be one of none, latest, all"),
        ({"context": {}}, "schedule 'hourly': its context does not fit context_schema"),
        ({"context": [1]}, "schedule 'hourly': context must be a mapping"),
        ({"every": "1h"}, "unknown key 'every' in schedules[0]"),
        ({"name": "bad name"}, "schedule name 'bad name' must match"),
    ],
)
def test_bad_schedules_are_explained(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(template(**changes))
    assert says in str(caught.value)


def test_duplicate_and_incomplete_schedules_are_explained() -> None:
    doubled = template()
    doubled["schedules"] = doubled["schedules"] * 2
    with pytest.raises(TemplateError, match="duplicate schedule 'hourly'"):
        parse_template(doubled)
    missing = template()
    del missing["schedules"][0]["cron"]
    with pytest.raises(TemplateError, match="missing required key 'cron'"):
        parse_template(missing)
