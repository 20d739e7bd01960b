"""The ``tasker`` CLI as a user runs it: a subprocess against a real database.

The flows run once per backend (``db_url``: a fresh migrated SQLite file, a fresh
migrated PostgreSQL database); edge cases that do not depend on the backend are in
``test_cli_details.py``, on SQLite only. Setup that is not the subject of a test goes
through the library in-process: a subprocess costs about 0.3 s.
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cli_support import (
    EVENT_KEYS,
    STEP_KEYS,
    TASK_KEYS,
    Cli,
    cli_env,
    create,
    write_templates,
)

from tasker import Tasker, __version__
from tasker.events import EventConsumer
from tasker.runtime.runner import run_until_final
from tasker.store.queries import load_migrations

pytestmark = pytest.mark.slow

THREE = ("three_steps", "--namespace", "accept")
ACTOR = f"cli:{getpass.getuser()}"


# -- no database --------------------------------------------------------------------


def test_version_and_usage_errors(tmp_path: Path) -> None:
    cli = Cli(cli_env(f"sqlite:///{tmp_path}/none.db", None, None))

    assert cli.ok("--version").out == f"tasker {__version__}\n"
    for args in (["task", "show", "abc"], ["no-such-command"], ["task", "create"]):
        result = cli(*args)
        assert result.code == 2, args
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert not (tmp_path / "none.db").exists()


def test_templates_validate_list_and_show(tmp_path: Path) -> None:
    templates, handlers = write_templates(tmp_path)
    cli = Cli(cli_env(f"sqlite:///{tmp_path}/none.db", templates, handlers))
    noop = "handler: 'tasker.builtin_handlers:noop'"
    broken = {
        "unknown_key.yaml": (
            f"name: t\nsteps:\n  - {{name: a, {noop}, retries: 2}}\n",
            "step 'a': unknown key 'retries'",
        ),
        "duplicate_step.yaml": (
            f"name: t\nsteps:\n  - {{name: a, {noop}}}\n  - {{name: a, {noop}}}\n",
            "step 'a': duplicate step name",
        ),
        "unknown_dependency.yaml": (
            f"name: t\nsteps:\n  - {{name: a, {noop}, depends_on: [zz]}}\n",
            "step 'a': depends on unknown step 'zz'",
        ),
        "cycle.yaml": (
            f"name: t\nsteps:\n  - {{name: a, {noop}, depends_on: [b]}}\n"
            f"  - {{name: b, {noop}, depends_on: [a]}}\n",
            "dependency cycle: a -> b -> a",
        ),
        "bad_handler.yaml": (
            "name: t\nsteps:\n  - {name: a, handler: 'no_such_module_xyz:run'}\n",
            "step 'a':",
        ),
        "bad_schema.yaml": (
            f"name: t\ncontext_schema: {{type: 12}}\nsteps:\n  - {{name: a, {noop}}}\n",
            "context_schema is not a valid JSON Schema",
        ),
        "malformed.yaml": ("name: t\nsteps: [\n", "could not parse YAML"),
    }
    bad = tmp_path / "bad"
    bad.mkdir()
    for file_name, (text, _) in broken.items():
        (bad / file_name).write_text(text)

    # Given valid files, When validated, Then one OK line each and exit 0.
    good = cli.ok("templates", "validate", str(templates))
    assert "OK" in good.out and "accept/three_steps@1.0.0" in good.out
    assert "billing/charge_and_ship@0.1.0" in good.out

    # Given one good and several bad files, Then every bad one is named with its problem.
    mixed = cli("templates", "validate", str(templates / "three_steps.yaml"), str(bad))
    assert mixed.code == 2
    assert "OK" in mixed.out and "three_steps.yaml" in mixed.out
    error_lines = [line for line in mixed.err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == len(broken), mixed.err
    for file_name, (_, problem) in broken.items():
        line = next(line for line in error_lines if file_name in line)
        assert problem in line, line
    missing = cli("templates", "validate", str(tmp_path / "missing.yaml"))
    assert missing.code == 2 and "missing.yaml" in missing.err

    listed = cli.ok("templates", "list", "--json").json()
    assert [(t["namespace"], t["name"]) for t in listed] == [
        ("accept", "three_steps"),
        ("billing", "charge_and_ship"),
    ]
    shown = cli.ok("templates", "show", *THREE, "--json").json()
    assert shown == listed[0]
    tree = cli.ok("templates", "show", *THREE).out
    assert "L0 a" in tree and "L1 b" in tree and "L2 c" in tree and "also after a" in tree
    unknown = cli("templates", "show", "nope")
    assert unknown.code == 2 and "no template default/nope" in unknown.err


def test_unreachable_database_exits_3() -> None:
    cli = Cli(cli_env("postgresql://postgres@127.0.0.1:1/x", None, None))
    result = cli("task", "list")
    assert result.code == 3
    assert result.err.startswith("error: cannot reach the database: ")
    assert result.err.count("\n") == 1, result.err


# -- schema ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/fresh.db"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


def test_db_upgrade_and_status_on_a_fresh_database(unmigrated_url: str, tmp_path: Path) -> None:
    cli = Cli(cli_env(unmigrated_url, None, None))
    migrations = [f"{v:04d}_{name}" for v, name, _ in load_migrations("sqlite")]

    # Given no schema, a command that needs it refuses, hints at the fix, creates nothing.
    refused = cli("task", "list")
    assert refused.code == 2 and "tasker db upgrade" in refused.err
    status = cli.ok("db", "status", "--json").json()
    assert [(s["version"], s["applied"], s["applied_at"]) for s in status] == [
        (i + 1, False, None) for i in range(len(migrations))
    ]
    if unmigrated_url.startswith("sqlite"):
        assert not (tmp_path / "fresh.db").exists()
    else:
        with psycopg.connect(unmigrated_url) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'tasker'").fetchall()
        assert found == []

    # When upgraded, every migration is applied once.
    upgraded = cli.ok("db", "upgrade")
    assert upgraded.out.splitlines() == [f"applied {m}" for m in migrations]
    assert cli.ok("db", "upgrade").out.strip() == "already up to date"
    status = cli.ok("db", "status", "--json").json()
    assert all(s["applied"] and s["applied_at"].endswith("Z") for s in status)


# -- tasks, once per backend --------------------------------------------------------


def test_create_show_and_idempotency(cli: Cli, tasker: Tasker) -> None:
    # Given a context that breaks the schema twice, Then exit 2 listing both, nothing written.
    invalid = cli("task", "create", *THREE, "--context", '{"order_id": "x", "note": 5}')
    assert invalid.code == 2
    assert "$.order_id: 'x' is not of type 'integer'" in invalid.err
    assert "$.note: 5 is not of type 'string'" in invalid.err
    assert tasker.list_tasks() == []

    # When created with a key, Then --json is the contract's task.
    created = cli.ok(
        "task", "create", *THREE, "--context", '{"order_id": 7}', "--idempotency-key", "k1",
        "--initiator", "alice", "--tag", "t1", "--tag", "t2", "--json",
    ).json()  # fmt: skip
    assert set(created) == TASK_KEYS
    assert all(set(step) == STEP_KEYS for step in created["steps"])
    assert created["status"] == "pending" and created["context"] == {"order_id": 7}
    assert (created["idempotency_key"], created["initiator"], created["tags"]) == (
        "k1",
        "alice",
        ["t1", "t2"],
    )
    assert [s["depends_on"] for s in created["steps"]] == [[], ["a"], ["a", "b"]]
    task_id = created["id"]
    assert cli.ok("task", "show", str(task_id), "--json").json() == created

    # The same key and payload answer with the same id; a different payload is a conflict.
    same = ("task", "create", *THREE, "--idempotency-key", "k1", "--context")
    assert cli.ok(*same, '{"order_id": 7}').out.strip() == str(task_id)
    conflict = cli(*same, '{"order_id": 8}')
    assert conflict.code == 2
    assert f"idempotency key 'k1' already used by task {task_id}" in conflict.err
    assert [t["id"] for t in tasker.list_tasks()] == [task_id]

    # The text view: the DAG with states, blocking reasons and the execution context.
    text = cli.ok("task", "show", str(task_id)).out
    assert f"task {task_id} accept/three_steps@1.0.0" in text
    assert "L0 a  pending  attempts 0/3  ready" in text
    assert "L1 b  pending  attempts 0/3  blocked: dependencies_not_satisfied" in text
    assert "L2 c  pending" in text and "(also after a)" in text
    assert "execution: has_ready_steps · next: execute_ready_steps" in text


def test_a_delayed_task_with_a_priority_from_the_cli(cli: Cli, tasker: Tasker) -> None:
    # Given a task created to start in ten minutes, with priority 3
    created = cli.ok(
        "task", "create", *THREE, "--context", '{"order_id": 7}', "--delay", "10m",
        "--priority", "3", "--json",
    ).json()  # fmt: skip
    # Then its JSON says when it starts, ten minutes after its creation
    assert created["priority"] == 3
    start = datetime.fromisoformat(created["run_at"])
    assert start - datetime.fromisoformat(created["created_at"]) == timedelta(minutes=10)
    # And task show says it is scheduled, with the time and how long until then
    text = cli.ok("task", "show", str(created["id"])).out
    assert re.search(r"scheduled: starts at \d\d:\d\d:\d\d UTC \(in (9 min|10 min)", text), text
    assert "priority: 3" in text
    assert "L0 a  pending  attempts 0/3  scheduled: starts at" in text
    # And an explicit time without a zone is UTC
    at = cli.ok(
        "task", "create", *THREE, "--context", '{"order_id": 8}', "--run-at", "2031-05-06T07:08:09",
        "--json",
    ).json()  # fmt: skip
    assert at["run_at"] == "2031-05-06T07:08:09Z" and at["priority"] == 0
    assert (
        "scheduled: starts at 2031-05-06 07:08:09 UTC" in cli.ok("task", "show", str(at["id"])).out
    )


def test_task_list_filters(cli: Cli, tasker: Tasker) -> None:
    done = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, done)
    failed = create(tasker, "charge_and_ship", "billing")
    run_until_final(tasker, failed)
    pending = create(tasker, "three_steps", "accept", order_id=2)

    def ids(*args: str) -> list[int]:
        return [t["id"] for t in cli.ok("task", "list", "--json", *args).json()]

    assert ids("--status", "complete") == [done]
    assert ids("--namespace", "billing") == [failed]
    assert ids("--name", "three_steps", "--limit", "1") == [pending]
    assert ids("--name", "three_steps", "--before-id", str(pending)) == [done]


def test_run_to_completion_and_to_failure(cli: Cli) -> None:
    complete = cli("run", *THREE, "--context", '{"order_id": 1}', "--json")
    assert complete.code == 0, complete.err
    task = complete.json()
    assert set(task) == TASK_KEYS
    assert task["status"] == "complete"
    assert [(s["name"], s["status"]) for s in task["steps"]] == [
        ("a", "complete"),
        ("b", "complete"),
        ("c", "complete"),
    ]
    assert task["steps"][1]["results"] == {"x": 1}

    failed = cli("run", "charge_and_ship", "--namespace", "billing")
    assert failed.code == 1
    assert "step charge: error (attempt 1/3) PermanentError: card declined" in failed.out
    summary = [line for line in failed.out.splitlines() if line.startswith("task ")][-1]
    assert " error in " in summary and "1 error, 1 pending" in summary


def test_worker_burst_then_signals(cli: Cli, tasker: Tasker) -> None:
    first = create(tasker, "three_steps", "accept", order_id=1)
    second = create(tasker, "three_steps", "accept", order_id=2)
    failing = create(tasker, "charge_and_ship", "billing")

    burst = cli("worker", "--burst", "--concurrency", "4", "--grace-seconds", "1")
    assert burst.code == 0, burst.err
    assert "started" in burst.err and "stopped: 7 steps executed" in burst.err
    statuses = {t["id"]: t["status"] for t in tasker.list_tasks()}
    assert statuses == {first: "complete", second: "complete", failing: "error"}

    # Given a running worker, `task create --wait` returns once the task is final (exit 0
    # complete, 1 error), and SIGTERM stops the worker gracefully with exit 0.
    with cli.with_env(TASKER_LOG_FORMAT="json").popen("worker", "--concurrency", "2") as worker:
        try:
            waited = cli(
                "task", "create", *THREE, "--context", '{"order_id": 3}', "--wait", "--json"
            )
            assert waited.code == 0, waited.err
            assert waited.json()["status"] == "complete"
            failed = cli("task", "create", "charge_and_ship", "--namespace", "billing", "--wait")
            assert failed.code == 1
            assert "PermanentError: card declined" in failed.out
        finally:
            worker.terminate()
            _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines()]
    assert any("SIGTERM received" in entry["message"] for entry in logs)
    assert all(entry["worker_id"] for entry in logs)


def test_retry_resolve_cancel(cli: Cli, tasker: Tasker) -> None:
    task_id = create(tasker, "charge_and_ship", "billing")
    assert run_until_final(tasker, task_id) == "error"

    # A failed task is retried: its failed step is re-opened with attempts reset.
    assert "charge" in cli.ok("task", "retry", str(task_id), "--reason", "card updated").out
    task = tasker.get_task(task_id)
    assert task["status"] == "in_progress"
    assert (task["steps"][0]["status"], task["steps"][0]["attempts"]) == ("pending", 0)
    again = cli("task", "retry", str(task_id))
    assert (
        again.code == 2
        and f"task {task_id} is 'in_progress': only a failed task can be retried" in again.err
    )

    # Resolving the step by hand lets its dependent run; then the task completes.
    cli.ok("step", "resolve", str(task_id), "charge", "--reason", "paid by phone",
           "--results", '{"charge_id": "manual"}')  # fmt: skip
    assert run_until_final(tasker, task_id) == "complete"
    task = tasker.get_task(task_id)
    assert [(s["status"], s["results"]) for s in task["steps"]] == [
        ("resolved_manually", {"charge_id": "manual"}),
        ("complete", {}),
    ]
    manual = [
        t for t in tasker.transitions(task_id) if t["reason"] in ("card updated", "paid by phone")
    ]
    assert manual and all(t["actor"] == ACTOR for t in manual)
    complete_retry = cli("task", "retry", str(task_id))
    assert complete_retry.code == 2
    assert f"task {task_id} is 'complete': only a failed task can be retried" in complete_retry.err

    # A pending task is cancelled with all its steps.
    pending = create(tasker, "three_steps", "accept", order_id=1)
    assert cli.ok("task", "cancel", str(pending)).out.strip() == f"task {pending} cancelled"
    task = tasker.get_task(pending)
    assert task["status"] == "cancelled"
    assert {s["status"] for s in task["steps"]} == {"cancelled"}


def test_events_tail(cli: Cli, tasker: Tasker) -> None:
    first = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, first)
    second = create(tasker, "three_steps", "accept", order_id=2)

    events = [json.loads(line) for line in cli.ok("events", "tail", "--json").out.splitlines()]
    assert all(set(e) == EVENT_KEYS for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert events == tasker.events(0)
    names = [e["name"] for e in events if e["task_id"] == first]
    assert names[0] == "workflow.task_created" and names[-1] == "workflow.task_finalized"
    assert names.count("step.completed") == 3 and "task.completed" in names

    middle = ids[len(ids) // 2]
    after = cli.ok("events", "tail", "--json", "--from", str(middle), "--task", str(second))
    expected = [e["id"] for e in events if e["id"] > middle and e["task_id"] == second]
    assert [json.loads(line)["id"] for line in after.out.splitlines()] == expected
    assert expected


def test_events_prune_keeps_what_a_durable_consumer_has_not_read(cli: Cli, tasker: Tasker) -> None:
    # Given a durable consumer that has handled the first two events of a finished task
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    run_until_final(tasker, task_id)
    events = tasker.events()
    audit = EventConsumer(tasker, "audit")
    assert audit.poll(limit=2) == events[:2]
    audit.commit(events[1]["id"])
    # When every event is pruned, Then only those two go, and the rest is said to be kept
    pruned = cli.ok("events", "prune", "--older-than", "0s")
    assert pruned.out.splitlines() == [
        "deleted 2 events older than 0s",
        f"kept {len(events) - 2} events not yet read by consumer 'audit' (--force deletes them)",
    ]
    assert tasker.events() == events[2:]
    # And with --force, those go too
    forced = cli.ok("events", "prune", "--older-than", "0s", "--force")
    assert forced.out.splitlines() == [f"deleted {len(events) - 2} events older than 0s"]
    assert tasker.events() == []
