"""What an operator meets using the CLI day to day (issue 17, item 6): waiting with a
timeout and a hint when nothing can run the task, contexts from files and stdin, step
results in ``task show``, tables that stay whole in a pipe, ``tasker workers``, ``tasker
health`` and ``templates validate --no-import``. Each flow runs the real CLI on a fresh
SQLite file and a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, create

from tasker import Tasker
from tasker.definitions import HandlerCoverage

pytestmark = pytest.mark.slow

THREE = ("three_steps", "--namespace", "accept")


def one_error_line(err: str) -> str:
    """The single ``error: …`` line a bad input prints (and nothing else on stderr)."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def register_worker(tasker: Tasker, worker_id: str, handlers: tuple[str, ...]) -> None:
    tasker.register_worker(
        worker_id,
        hostname="test-host",
        pid=4242,
        namespaces=[],
        concurrency=4,
        lease_seconds=300,
        handlers=HandlerCoverage(handlers=handlers, templates=()),
    )


def test_wait_gives_up_at_its_timeout_with_exit_4_and_says_why(cli: Cli, tasker: Tasker) -> None:
    # Given no worker at all
    # When a task is created with --wait --timeout
    waited = cli(
        "task", "create", *THREE, "--context", '{"order_id": 1}', "--wait", "--timeout", "0.5"
    )
    # Then it gives up with exit 4, after a hint that no worker is live
    assert waited.code == 4, waited.err
    assert "hint: no live worker" in waited.err
    assert "still pending after 0.5 s" in waited.err
    # And the task is still there, pending, for a worker to come
    assert [t["status"] for t in cli.ok("task", "list", "--json").json()] == ["pending"]

    # Given a live worker that serves only some of the template's handlers
    register_worker(tasker, "partial-worker", ("tasker.builtin_handlers:noop",))
    # When a task is created with --wait --timeout 0 (give up at once)
    waited = cli(
        "task", "create", *THREE, "--context", '{"order_id": 2}', "--wait", "--timeout", "0"
    )
    # Then the hint names the handler no live worker serves
    assert waited.code == 4
    assert "no live worker serves accept/three_steps@1.0.0's handler(s)" in waited.err
    assert "tasker.builtin_handlers:echo" in waited.err
    assert "builtin_handlers:noop" not in waited.err.split("handler(s)")[1].split(":", 1)[1]

    # --timeout alone is a usage error (exit 2), and nothing is created
    alone = cli("task", "create", *THREE, "--context", '{"order_id": 3}', "--timeout", "5")
    assert alone.code == 2 and one_error_line(alone.err) == "error: --timeout needs --wait"
    negative = cli("task", "create", *THREE, "--wait", "--timeout", "-1")
    assert negative.code == 2 and "--timeout" in one_error_line(negative.err)
    assert negative.out == ""
    assert len(cli.ok("task", "list", "--json").json()) == 2


def test_context_from_a_file_or_stdin(cli: Cli, tmp_path: Path) -> None:
    context = {"order_id": 7, "note": "from a file"}
    path = tmp_path / "context.json"
    path.write_text(json.dumps(context))

    # --context-file PATH, --context - and --context-file - each give the task its context
    from_file = cli.ok("task", "create", *THREE, "--context-file", str(path), "--json").json()
    from_stdin = cli.ok(
        "task", "create", *THREE, "--context", "-", "--json", stdin=json.dumps(context)
    ).json()
    from_dash = cli.ok(
        "task", "create", *THREE, "--context-file", "-", "--json", stdin=json.dumps(context)
    ).json()
    assert from_file["context"] == from_stdin["context"] == from_dash["context"] == context
    # and so for `tasker run`
    ran = cli("run", *THREE, "--context-file", str(path), "--json")
    assert ran.code == 0, ran.err
    assert ran.json()["context"] == context and ran.json()["status"] == "complete"

    # Bad input: one line on stderr, exit 2, nothing created
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "latin1.json").write_bytes(b'{"note": "caf\xe9"}')
    bad = {
        ("--context-file", str(tmp_path / "missing.json")): "cannot read --context-file",
        ("--context-file", str(tmp_path)): "cannot read --context-file",
        ("--context-file", str(tmp_path / "list.json")): "must be a JSON object",
        ("--context-file", str(tmp_path / "broken.json")): "is not valid JSON",
        ("--context-file", str(tmp_path / "latin1.json")): "cannot read --context-file",
        ("--context", "{}", "--context-file", str(path)): "not both",
    }
    for args, problem in bad.items():
        for command in (("task", "create"), ("run",)):
            result = cli(*command, *THREE, *args)
            assert result.code == 2, (command, args, result.err)
            assert problem in result.err.splitlines()[0], (command, args, result.err)
    not_json = cli("task", "create", *THREE, "--context", "-", stdin="order 7")
    assert not_json.code == 2 and "--context - (stdin) is not valid JSON" in not_json.err
    assert len(cli.ok("task", "list", "--json").json()) == 4  # three creations and the run


def test_task_show_shows_step_results(cli: Cli, tasker: Tasker) -> None:
    # Given a task whose first step was resolved with long results
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    long_results = {"rows": list(range(100)), "label": "x" * 50}
    tasker.resolve_step(task_id, "a", reason="by hand", actor="test", results=long_results)
    # When it is shown
    shown = cli.ok("task", "show", str(task_id)).out
    # Then the step's results are on its line, cut with an ellipsis
    line = next(line for line in shown.splitlines() if "L0 a" in line)
    assert 'results {"rows":[0,1,2,' in line and line.endswith("…"), line
    # And --json has them whole
    steps = {s["name"]: s for s in cli.ok("task", "show", str(task_id), "--json").json()["steps"]}
    assert steps["a"]["results"] == long_results and steps["b"]["results"] is None


def test_piped_tables_keep_words_whole(cli: Cli, template_dirs: tuple[Path, Path]) -> None:
    # Given stdout is a pipe and COLUMNS is not set (Rich would assume 80 columns)
    piped = Cli({k: v for k, v in cli.env.items() if k != "COLUMNS"})
    # When a table wider than 80 columns is printed
    listed = piped.ok("templates", "list").out
    # Then every cell is whole on its row: the long source paths, the description
    sources = [str(template_dirs[0] / f"{n}.yaml") for n in ("three_steps", "charge_and_ship")]
    assert all(len(source) > 40 for source in sources)
    for source in sources:
        assert any(source in line for line in listed.splitlines()), listed
    assert any("Three steps, c after a and b" in line for line in listed.splitlines())
    # (COLUMNS, when set, still decides)
    narrow = Cli({**piped.env, "COLUMNS": "60"}).ok("templates", "list").out
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_workers_and_health(cli: Cli, tasker: Tasker, db_url: str) -> None:
    # Given no worker yet
    assert cli.ok("workers", "--json").json() == []
    assert "no worker heard from" in cli.ok("workers").err
    # Given one live worker running a step, and one that stopped
    register_worker(tasker, "live-worker", ("tasker.builtin_handlers:noop",))
    register_worker(tasker, "gone-worker", ("tasker.builtin_handlers:noop",))
    tasker.stop_worker("gone-worker")
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    claimed = tasker.claim("live-worker", 1)
    assert [step.name for step in claimed] == ["a"]

    # When the workers are listed
    views = {w["id"]: w for w in cli.ok("workers", "--json").json()}
    # Then each has its state, heartbeat age and running steps
    assert views["live-worker"]["state"] == "active"
    assert views["gone-worker"]["state"] == "stopped"
    assert views["live-worker"]["heartbeat_age_seconds"] >= 0
    assert [(r["task_id"], r["name"]) for r in views["live-worker"]["running"]] == [(task_id, "a")]
    assert views["live-worker"]["held_steps"] == 1
    text = cli.ok("workers").out
    row = next(line for line in text.splitlines() if "live-worker" in line)
    assert "active" in row and f"1/4 {task_id}/a" in row

    # When the health is asked for
    health = cli.ok("health", "--json").json()
    # Then the counts are those of /health/status
    assert health["status"] == "healthy"
    assert health["database"] == ("postgres" if db_url.startswith("postgres") else "sqlite")
    assert health["counts"]["total_tasks"] == 1 and health["counts"]["in_progress_steps"] == 1
    assert health["counts"]["active_workers"] == 1
    assert {w["id"]: w["state"] for w in health["workers"]} == {
        "live-worker": "active",
        "gone-worker": "stopped",
    }
    text = cli.ok("health").out
    assert text.startswith("healthy · ") and "workers: 1 active, 0 stale" in text


def test_health_and_workers_exit_3_when_the_database_cannot_be_reached() -> None:
    cli = Cli(cli_env("postgresql://postgres@127.0.0.1:1/x", None, None))
    for command in ("health", "workers"):
        result = cli(command, "--json")
        assert result.code == 3, result.err
        assert one_error_line(result.err).startswith("error: cannot reach the database")
        assert result.out == ""


def test_validate_without_importing_handlers(tmp_path: Path) -> None:
    cli = Cli(cli_env(f"sqlite:///{tmp_path}/none.db", None, None))
    (tmp_path / "elsewhere.yaml").write_text(
        "name: elsewhere\nsteps:\n  - {name: a, handler: 'module_only_on_workers:run'}\n"
    )
    (tmp_path / "malformed.yaml").write_text(
        "name: malformed\nsteps:\n  - {name: a, handler: 'not a handler path'}\n"
    )
    # A handler whose module is not importable here fails a full check...
    full = cli("templates", "validate", str(tmp_path / "elsewhere.yaml"))
    assert full.code == 2 and "module_only_on_workers" in full.err
    # ...and passes --no-import, which checks the structure only
    structure = cli.ok("templates", "validate", "--no-import", str(tmp_path / "elsewhere.yaml"))
    assert structure.out.startswith("OK ") and "default/elsewhere@0.1.0" in structure.out
    # A handler path that is not module:callable fails either way
    malformed = cli("templates", "validate", "--no-import", str(tmp_path / "malformed.yaml"))
    assert malformed.code == 2 and "malformed.yaml" in malformed.err
    assert not (tmp_path / "none.db").exists()
    assert "module_only_on_workers" not in os.environ.get("PYTHONPATH", "")


def test_a_usage_error_is_one_line_without_the_help(tmp_path: Path) -> None:
    cli = Cli(cli_env(f"sqlite:///{tmp_path}/none.db", None, None))
    # A bad value: one line on stderr, nothing on stdout
    bad = cli("task", "list", "--limit", "abc")
    assert bad.code == 2 and "--limit" in one_error_line(bad.err) and bad.out == ""
    # A group alone: its help, once, and exit 2
    alone = cli("task")
    assert alone.code == 2 and alone.out.count("Usage: tasker task") == 1
    assert alone.err.strip() == ""


def test_task_show_says_what_a_limited_step_waits_for(
    cli: Cli, tasker: Tasker, template_dirs: tuple[Path, Path]
) -> None:
    # Given a template allowing one task per customer at a time, and two tasks of customer 42
    (template_dirs[0] / "per_customer.yaml").write_text(
        "namespace: accept\nname: per_customer\n"
        "concurrency: {key: customer_id, limit: 1}\n"
        "steps:\n  - {name: sync, handler: tasker.builtin_handlers:noop}\n"
    )
    first, second = (
        cli.ok(
            "task", "create", "per_customer", "--namespace", "accept",
            "--context", '{"customer_id": 42}', "--json",
        ).json()["id"]
        for _ in range(2)
    )  # fmt: skip
    # When a worker claims: the first runs, the second must wait
    assert [c.task_id for c in tasker.claim("w", 10)] == [first]
    # Then task show says why, naming the key, the slots and the task holding them
    shown = cli.ok("task", "show", str(second)).out
    assert f"waiting: customer_id=42 has 1/1 running (task {first})" in shown
    readiness = cli.ok("task", "show", str(second), "--json").json()
    assert readiness["steps"][0]["status"] == "pending"
    # And creating a task without the key field is refused, naming it
    refused = cli("task", "create", "per_customer", "--namespace", "accept", "--context", "{}")
    assert refused.code == 2 and "customer_id" in one_error_line(refused.err)
