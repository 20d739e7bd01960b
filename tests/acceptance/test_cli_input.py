"""Bad input on every entry point of the CLI, once per backend: text that is not UTF-8,
ids and counts larger than the database holds, durations and dates out of range, and
documents nested too deep. Each is one ``error: …`` on stderr and exit 2, never a
traceback (``Cli`` asserts that), and nothing is written.

Invalid UTF-8 is passed as bytes, as a shell passes it: Python sees such an argument as
a string with lone surrogates (``\\udcff``), which no database can store.
"""

from __future__ import annotations

import pytest
from cli_support import Cli, create

from tasker import Tasker
from tasker.runtime.runner import run_until_final

pytestmark = pytest.mark.slow

THREE = ("three_steps", "--namespace", "accept")
HUGE_ID = "99999999999999999999999"  # more than a signed 64-bit integer
NOT_UTF8 = b"\xff"


def assert_refused(cli: Cli, *args: str | bytes, says: str = "", timeout: float = 60) -> str:
    """Run the command; it must exit 2 with an ``error:`` line (saying ``says``)."""
    result = cli(*args, timeout=timeout)
    assert result.code == 2, (args, result)
    assert result.err.startswith("error: "), (args, result.err)
    assert says in result.err, (args, result.err)
    return result.err


def stored_templates(tasker: Tasker) -> list[str]:
    rows = tasker.read(lambda c: c.fetch_all("list_stored_templates"))
    return [f"{r['namespace']}/{r['name']}" for r in rows]


def test_a_context_nested_too_deep_is_refused_and_nothing_is_written(
    cli: Cli, tasker: Tasker
) -> None:
    # Given contexts nested 900 levels (JSON parses them) and 30,000 levels (it cannot)
    for depth in (900, 30_000):
        context = '{"order_id": 1, "x": ' + "[" * depth + "]" * depth + "}"
        # When created through the CLI, or run, Then refused as too deep
        for command in (("task", "create"), ("run",)):
            assert_refused(cli, *command, *THREE, "--context", context, says="deeper than 64")
    # And nothing was written: no task, no event, not even the template
    assert tasker.list_tasks() == [] and tasker.events() == []
    assert stored_templates(tasker) == []


def test_text_that_is_not_utf8_is_refused_by_every_option(cli: Cli, tasker: Tasker) -> None:
    pending = create(tasker, "three_steps", "accept", order_id=1)
    failed = create(tasker, "charge_and_ship", "billing")
    assert run_until_final(tasker, failed) == "error"
    history = {t: tasker.transitions(t) for t in (pending, failed)}
    cli.ok("auth", "token", "create", "--name", "reader", "--scopes", "tasks:read")

    # Text that would be stored: refused, naming what is wrong.
    new = ("task", "create", *THREE, "--context", '{"order_id": 2}')
    for args in (
        (*new, "--idempotency-key", NOT_UTF8),
        (*new, "--initiator", NOT_UTF8),
        (*new, "--source-system", NOT_UTF8),
        (*new, "--reason", NOT_UTF8),
        (*new, "--tag", b"vip\xff"),
        ("task", "cancel", str(pending), "--reason", NOT_UTF8),
        ("task", "retry", str(failed), "--reason", NOT_UTF8),
        ("step", "retry", str(failed), "charge", "--reason", NOT_UTF8),
        ("step", "resolve", str(failed), "charge", "--reason", NOT_UTF8),
    ):
        assert_refused(cli, *args, says="is not valid Unicode")
    # Text that is only looked up: refused too (nothing can match it).
    for args in (
        ("task", "list", "--namespace", NOT_UTF8),
        ("task", "list", "--name", NOT_UTF8),
        ("step", "retry", str(failed), b"charge\xff"),
        ("step", "resolve", str(failed), b"charge\xff", "--reason", "x"),
        ("auth", "token", "revoke", NOT_UTF8),
    ):
        assert_refused(cli, *args)

    # Then nothing changed: no new task, no transition, the token still valid.
    assert sorted(t["id"] for t in tasker.list_tasks()) == [pending, failed]
    assert {t: tasker.transitions(t) for t in (pending, failed)} == history
    assert "reader" in cli.ok("auth", "token", "list").out


def test_ids_and_counts_larger_than_the_database_holds_are_usage_errors(
    cli: Cli, tasker: Tasker
) -> None:
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    events = tasker.events()
    for args in (
        ("task", "show", HUGE_ID),
        ("task", "show", HUGE_ID, "--json"),
        ("task", "cancel", HUGE_ID),
        ("task", "retry", HUGE_ID),
        ("step", "retry", HUGE_ID, "a"),
        ("step", "resolve", HUGE_ID, "a", "--reason", "x"),
        ("task", "list", "--before-id", HUGE_ID),
        ("events", "tail", "--from", HUGE_ID),
        ("events", "tail", "--task", HUGE_ID),
        ("events", "prune", "--older-than", "0s", "--batch-size", HUGE_ID),
        ("task", "prune", "--finished-before", "2999-01-01", "--batch-size", HUGE_ID),
        ("task", "show", "0"),
    ):
        assert_refused(cli, *args, says="Invalid value for")
    assert [t["id"] for t in tasker.list_tasks()] == [task_id]
    assert tasker.events() == events


def test_durations_and_dates_out_of_range_are_usage_errors(cli: Cli, tasker: Tasker) -> None:
    done = create(tasker, "three_steps", "accept", order_id=1)
    assert run_until_final(tasker, done) == "complete"
    events = tasker.events()
    for older_than in ("99999999999d", "999999d", "1e400d", "infd", "nand", "-1d", "soon", ""):
        assert_refused(cli, "events", "prune", "--older-than", older_than, says="--older-than")
    for before in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "99999-01-01"):
        assert_refused(cli, "task", "prune", "--finished-before", before, says="--finished-before")
    # A pace is a share of the time spent deleting: above 0, at most 1.
    for pace in ("0", "-0.5", "1.5", "nan", "inf", "fast"):
        assert_refused(cli, "events", "prune", "--older-than", "0s", "--pace", pace, says="--pace")
        assert_refused(
            cli, "task", "prune", "--finished-before", "2999-01-01", "--pace", pace, says="--pace"
        )
    # A worker's durations and concurrency too (an infinite lease would never let it stop).
    for option, value in (
        ("--lease-seconds", "inf"),
        ("--lease-seconds", "nan"),
        ("--grace-seconds", "inf"),
        ("--concurrency", HUGE_ID),
    ):
        assert_refused(cli, "worker", "--burst", option, value, says=option, timeout=30)
    # Then nothing was deleted
    assert tasker.events() == events and [t["id"] for t in tasker.list_tasks()] == [done]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--delay", "10x"), "not a duration"),
        (("--delay", "-5m"), "not a duration"),
        (("--delay", "200000d"), "longer than the longest duration"),
        (("--run-at", "next tuesday"), "not an ISO 8601"),
        (("--run-at", "9999-12-31T23:59:59-05:00"), "out of range"),
        (("--run-at", "2030-01-01T00:00:00Z", "--delay", "5m"), "not both"),
        (("--priority", "high"), "priority"),
        (("--priority", "1.5"), "priority"),
        (("--priority", str(2**31)), "priority"),
    ],
)
def test_bad_start_times_and_priorities_are_refused_and_nothing_is_written(
    cli: Cli, tasker: Tasker, options: tuple[str, ...], says: str
) -> None:
    assert_refused(
        cli, "task", "create", *THREE, "--context", '{"order_id": 1}', *options, says=says
    )
    assert tasker.list_tasks() == [] and tasker.events() == []
