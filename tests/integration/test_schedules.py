"""Cron schedules through the facade on both backends, with a fake clock (issue 14):
each tick creates exactly one task, catch-up after downtime, pause and resume stored and
audited, and two firing processes (two Taskers, threads) never both fire a tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasker import FakeClock, Tasker, Template
from tasker.definitions import TemplateRegistry
from tasker.exceptions import NotFound
from tasker.store import open_database
from tasker.store.database import Database

T0 = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)  # 30 s past a whole hour


def reports(catchup: str = "latest", cron: str = "0 * * * *") -> Template:
    tpl = Template(
        "report",
        namespace="ops",
        schedules=[{"name": "hourly", "cron": cron, "context": {"kind": "h"}, "catchup": catchup}],
    )
    tpl.add_step("build", "tasker.builtin_handlers:noop")
    return tpl


def make(database: Database, clock: FakeClock, template: Template) -> Tasker:
    registry = TemplateRegistry()
    registry.add(template)
    tasker = Tasker(database, registry, clock=clock)
    tasker.sync_schedules()
    return tasker


def scheduled_tasks(tasker: Tasker) -> list[dict[str, Any]]:
    return sorted(tasker.list_tasks(namespace="ops", limit=1000), key=lambda t: t["id"])


def test_each_tick_creates_exactly_one_task(database: Database) -> None:
    # Given an hourly schedule stored at T0
    clock = FakeClock(T0)
    tasker = make(database, clock, reports())
    [listed] = tasker.schedules()
    assert listed["next_fire_at"] == "2026-01-01T13:00:00Z" and not listed["paused"]

    # When nothing is due, nothing fires
    assert tasker.fire_schedules() == []

    # When the tick comes, one task is made, keyed by the tick, with the schedule's context
    clock.advance(3600)
    [fired] = tasker.fire_schedules()
    task = tasker.get_task(fired.task_id)
    assert task["idempotency_key"] == "schedule:ops/report:hourly:2026-01-01T13:00:00Z"
    assert task["context"] == {"kind": "h"} and task["initiator"] == "schedule"
    assert tasker.fire_schedules() == []  # the same tick never fires twice

    # And the event names the schedule and the tick, with the task
    [event] = [e for e in tasker.events() if e["name"] == "schedule.fired"]
    assert event["task_id"] == fired.task_id
    assert event["payload"] == {
        "namespace": "ops",
        "name": "report",
        "schedule": "hourly",
        "tick": "2026-01-01T13:00:00Z",
    }
    [listed] = tasker.schedules()
    assert listed["next_fire_at"] == "2026-01-01T14:00:00Z"
    assert listed["last_task_id"] == fired.task_id and listed["last_tick"] == "2026-01-01T13:00:00Z"


@pytest.mark.parametrize(("catchup", "count"), [("none", 0), ("latest", 1), ("all", 5)])
def test_a_restart_after_downtime_catches_up_as_declared(
    database: Database, catchup: str, count: int
) -> None:
    # Given a schedule stored at T0, then every worker down for five hours and a half
    clock = FakeClock(T0)
    make(database, clock, reports(catchup))
    clock.advance(5.5 * 3600)
    # When a worker starts again (a new process: sync, then fire)
    restarted = make(database, clock, reports(catchup))
    fired = restarted.fire_schedules()
    # Then the missed ticks fire as the catchup says, once, and the next is the next hour
    expected = [T0.replace(second=0) + timedelta(hours=h) for h in range(6 - count, 6)]
    assert [f.tick for f in fired] == expected
    assert len(scheduled_tasks(restarted)) == count
    assert restarted.fire_schedules() == []
    assert restarted.schedules()[0]["next_fire_at"] == "2026-01-01T18:00:00Z"


def test_catchup_all_fires_at_most_100_ticks(database: Database) -> None:
    clock = FakeClock(T0)
    make(database, clock, reports("all", cron="* * * * *"))
    clock.advance(3 * 3600)
    fired = make(database, clock, reports("all", cron="* * * * *")).fire_schedules()
    assert len(fired) == 100 and fired[-1].tick == (T0 + timedelta(hours=3)).replace(second=0)


def test_pause_is_stored_audited_survives_a_restart_and_resume_skips_the_pause(
    database: Database,
) -> None:
    # Given a paused schedule
    clock = FakeClock(T0)
    tasker = make(database, clock, reports("all"))
    paused = tasker.set_schedule_paused(
        "ops", "report", "hourly", paused=True, actor="alice", reason="maintenance"
    )
    assert paused["paused"] and paused["paused_by"] == "alice"
    assert paused["pause_reason"] == "maintenance" and paused["next_fire_at"] is None

    # When hours pass and a worker restarts, nothing fires: the pause is stored
    clock.advance(3 * 3600)
    restarted = make(database, clock, reports("all"))
    assert restarted.schedules()[0]["paused"]
    assert restarted.fire_schedules() == []

    # When resumed, the paused ticks are not caught up: it fires from the next tick
    resumed = restarted.set_schedule_paused(
        "ops", "report", "hourly", paused=False, actor="bob", reason="done"
    )
    assert resumed["next_fire_at"] == "2026-01-01T16:00:00Z"
    assert restarted.fire_schedules() == []
    clock.advance(3600)
    assert len(restarted.fire_schedules()) == 1

    # And both changes are in the history and the event log, with who and why
    history = restarted.read(
        lambda c: c.fetch_all(
            "schedule_transitions", namespace="ops", template_name="report", name="hourly"
        )
    )
    assert [(h["from_state"], h["to_state"], h["actor"], h["reason"]) for h in history] == [
        ("active", "paused", "alice", "maintenance"),
        ("paused", "active", "bob", "done"),
    ]
    events = [e for e in restarted.events() if e["name"].startswith("schedule.")]
    assert [(e["name"], e["payload"].get("actor")) for e in events] == [
        ("schedule.paused", "alice"),
        ("schedule.resumed", "bob"),
        ("schedule.fired", None),
    ]
    # And pausing a paused schedule changes nothing: no second history row, no event
    restarted.set_schedule_paused("ops", "report", "hourly", paused=True)
    before = len(restarted.events())
    again = restarted.set_schedule_paused("ops", "report", "hourly", paused=True, reason="again")
    assert len(restarted.events()) == before and again["pause_reason"] is None


def test_an_unknown_schedule_cannot_be_paused(database: Database) -> None:
    tasker = make(database, FakeClock(T0), reports())
    with pytest.raises(NotFound, match="schedule ops/report:nightly does not exist"):
        tasker.set_schedule_paused("ops", "report", "nightly", paused=True)


def test_changing_the_cron_starts_the_schedule_afresh(database: Database) -> None:
    clock = FakeClock(T0)
    make(database, clock, reports("all"))
    clock.advance(2 * 3600)
    # The template now says every 15 minutes: the old schedule's missed ticks are not fired
    changed = make(database, clock, reports("all", cron="*/15 * * * *"))
    assert changed.fire_schedules() == []
    assert changed.schedules()[0]["next_fire_at"] == "2026-01-01T14:15:00Z"


def test_two_processes_firing_at_once_fire_each_tick_once(database: Database, db_url: str) -> None:
    # Given two Taskers on connections of their own (as two workers), 50 missed minutes
    clock = FakeClock(T0)
    first = make(database, clock, reports("all", cron="* * * * *"))
    second = make(open_database(db_url), clock, reports("all", cron="* * * * *"))
    clock.advance(50 * 60)
    # When both fire at the same moment, repeatedly
    fired: list[Any] = []
    barrier = threading.Barrier(2)

    def fire(tasker: Tasker) -> None:
        barrier.wait()
        for _ in range(5):
            fired.extend(tasker.fire_schedules())

    threads = [threading.Thread(target=fire, args=(t,)) for t in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every tick made one task, and no tick fired twice
    keys = [t["idempotency_key"] for t in scheduled_tasks(first)]
    assert len(keys) == len(set(keys)) == 50 == len(fired)
    second.close()
