"""``tasker schedule`` as a real subprocess, once per backend (issue 14): the list with
next fire times, pause and resume stored across processes with who and why, and bad
input (exit 2, nothing stored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli

pytestmark = pytest.mark.slow

NIGHTLY = """\
namespace: reports
name: nightly
schedules:
  - {name: at_two, cron: "0 2 * * *", timezone: Europe/Paris, context: {kind: full}, catchup: none}
  - {name: hourly, cron: "0 * * * *"}
steps:
  - {name: build, handler: tasker.builtin_handlers:noop}
"""


@pytest.fixture
def scli(cli: Cli, tmp_path: Path) -> Cli:
    templates = tmp_path / "scheduled"
    templates.mkdir()
    (templates / "nightly.yaml").write_text(NIGHTLY)
    return cli.with_env(TASKER_TEMPLATES=str(templates))


def test_list_pause_resume(scli: Cli) -> None:
    # Given a template with two schedules: list stores and shows them with next fire times
    listed = scli.ok("schedule", "list", "--json").json()
    assert [(s["template"], s["name"], s["catchup"]) for s in listed] == [
        ("nightly", "at_two", "none"),
        ("nightly", "hourly", "latest"),
    ]
    at_two = listed[0]
    assert at_two["timezone"] == "Europe/Paris" and at_two["context"] == {"kind": "full"}
    assert at_two["next_fire_at"].endswith(("T01:00:00Z", "T00:00:00Z"))  # 02:00 in Paris
    text = scli.ok("schedule", "list").out
    assert "reports/nightly" in text and "0 2 * * *" in text and "Europe/Paris" in text

    # When paused with a reason, in one process, Then another process sees it paused
    out = scli.ok("schedule", "pause", "reports/nightly", "at_two", "--reason", "migration").out
    assert "paused" in out
    [paused] = [s for s in scli.ok("schedule", "list", "--json").json() if s["name"] == "at_two"]
    assert paused["paused"] and paused["pause_reason"] == "migration"
    assert paused["paused_by"] and paused["next_fire_at"] is None
    assert "paused by" in scli.ok("schedule", "list").out

    # And resume brings the next fire time back
    out = scli.ok("schedule", "resume", "reports/nightly", "at_two").out
    assert "active, next fire" in out
    [resumed] = [s for s in scli.ok("schedule", "list", "--json").json() if s["name"] == "at_two"]
    assert not resumed["paused"] and resumed["next_fire_at"] == at_two["next_fire_at"]

    # And the event log has both, with who did it
    events = [e for e in scli.ok("events", "tail", "--json").out.splitlines() if "schedule." in e]
    assert len(events) == 2 and '"reason": "migration"' in events[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("pause", "nightly", "at_two"), "is not NAMESPACE/NAME"),
        (("pause", "reports/nightly", "weekly"), "schedule reports/nightly:weekly does not exist"),
        (("resume", "reports/", "at_two"), "is not NAMESPACE/NAME"),
        (("pause", "reports/nightly", "at_two", "--reason", b"\xff"), "reason"),
    ],
)
def test_bad_schedule_commands_exit_2_and_change_nothing(
    scli: Cli, args: tuple[str | bytes, ...], says: str
) -> None:
    result = scli("schedule", *args)
    assert result.code == 2, result
    assert result.err.startswith("error: ") and says in result.err, result.err
    assert not any(s["paused"] for s in scli.ok("schedule", "list", "--json").json())
