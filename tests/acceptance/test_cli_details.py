"""CLI edge cases whose handling does not depend on the backend, on SQLite only:
bad input, unknown names, plain-text views, and following the event log."""

from __future__ import annotations

import json
import select
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, create, open_library, write_templates

from tasker import Tasker
from tasker.runtime.runner import run_until_final

pytestmark = pytest.mark.slow

THREE = ("three_steps", "--namespace", "accept")


@pytest.fixture
def setup(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Cli, Tasker]]:
    templates, handlers = write_templates(tmp_path)
    monkeypatch.syspath_prepend(str(handlers))
    tasker = open_library(sqlite_url, templates)
    yield Cli(cli_env(sqlite_url, templates, handlers)), tasker
    tasker.close()


def test_bad_input_is_one_error_line_and_exit_2(setup: tuple[Cli, Tasker]) -> None:
    cli, tasker = setup
    done = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, done)

    cases = {
        ("task", "create", *THREE, "--context", "{order_id: 1}"): "--context is not valid JSON",
        ("run", *THREE, "--context", "{}"): "'order_id' is a required property",
        ("task", "create", "nope"): "no template default/nope",
        ("task", "list", "--status", "bogus"): "unknown status 'bogus'",
        ("task", "cancel", "999999"): "task 999999 does not exist",
        ("step", "retry", str(done), "a"): "is 'complete': only a failed step can be retried",
        ("step", "resolve", str(done), "nope", "--reason", "x"): f"task {done} has no step 'nope'",
        ("step", "resolve", str(done), "a", "--reason", "x", "--results", "{"): (
            "--results is not valid JSON"
        ),
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.code == 2, (args, result)
        first, *violations = result.err.splitlines()
        assert first.startswith("error: ") and message in result.err, (args, result.err)
        assert all(line.startswith("  - ") for line in violations), result.err
    assert [t["id"] for t in tasker.list_tasks()] == [done]


def test_text_views(setup: tuple[Cli, Tasker]) -> None:
    cli, tasker = setup
    failed = create(tasker, "charge_and_ship", "billing")
    run_until_final(tasker, failed)

    table = cli.ok("task", "list", "--status", "error").out
    assert f"{failed}" in table and "charge_and_ship" in table and "three_steps" not in table
    shown = cli.ok("task", "show", str(failed)).out
    assert "L0 charge  error  attempts 1/3" in shown and "PermanentError: card declined" in shown
    assert "blocked: not_retryable" in shown
    assert "L1 ship  pending" in shown and "blocked: dependencies_not_satisfied" in shown
    assert "execution: blocked_by_failures" in shown
    events = cli.ok("events", "tail", "--task", str(failed)).out
    assert "step.failed" in events and f"task {failed} step charge" in events
    cancelled = cli.ok("task", "cancel", str(failed))
    assert cancelled.out.strip() == f"task {failed} cancelled"
    assert "already cancelled" in cli.ok("task", "cancel", str(failed)).out


def test_invalid_transition_names_states_plainly(setup: tuple[Cli, Tasker]) -> None:
    cli, tasker = setup
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, task_id)
    result = cli("task", "cancel", str(task_id))
    assert result.code == 2
    assert result.err == f"error: task {task_id} cannot go from 'complete' to 'cancelled'\n"


def test_events_follow_until_sigterm(setup: tuple[Cli, Tasker]) -> None:
    cli, tasker = setup
    create(tasker, "three_steps", "accept", order_id=1)
    last = tasker.events(0)[-1]["id"]

    with cli.popen("events", "tail", "--follow", "--json", "--from", str(last)) as follower:
        try:
            second = create(tasker, "three_steps", "accept", order_id=2)
            assert follower.stdout is not None
            readable, _, _ = select.select([follower.stdout], [], [], 20)
            assert readable, "no event printed within 20 s"
            event = json.loads(follower.stdout.readline())
            assert (event["task_id"], event["name"]) == (second, "workflow.task_created")
        finally:
            follower.terminate()
            follower.communicate(timeout=10)
    assert follower.returncode == 0


def test_step_errors_name_the_step_the_user_typed(setup: tuple[Cli, Tasker]) -> None:
    cli, tasker = setup
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    result = cli("step", "retry", str(task_id), "a")  # pending: there is nothing to retry
    assert result.code == 2 and result.err.startswith("error: ")
    assert "step 'a'" in result.err and "only a failed step can be retried" in result.err


def test_retention_commands_prune_finished_tasks_and_old_events(
    setup: tuple[Cli, Tasker],
) -> None:
    cli, tasker = setup
    done = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, done)
    still_open = create(tasker, "three_steps", "accept", order_id=2)
    assert cli("task", "prune", "--finished-before", "2000-01-01").out.startswith("deleted 0")
    result = cli(
        "task", "prune", "--finished-before", "2999-01-01", "--batch-size", "1", "--pace", "0.5"
    )
    assert result.code == 0 and result.out.startswith("deleted 1 tasks")
    assert [t["id"] for t in tasker.list_tasks()] == [still_open]
    assert {e["task_id"] for e in tasker.events()} == {still_open}
    assert cli("events", "prune", "--older-than", "0s", "--pace", "1").out.startswith("deleted ")
    assert tasker.events() == []
    bad = cli("events", "prune", "--older-than", "soon")
    assert bad.code == 2 and "not a duration" in bad.err


def test_serve_stops_cleanly_on_sigterm(sqlite_url: str) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TASKER_DATABASE_URL": sqlite_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "tasker.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live") as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err
