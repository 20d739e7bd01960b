"""``tasker task create --from-file`` as a user runs it, on both backends: one task per
line, a bad line reported by its number while the others are created (exit 1), a file
that is not JSON lines refused before anything is written (exit 2), idempotency keys
answered with the existing task, ``-`` for stdin and ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli

from tasker import Tasker, TaskRequest

pytestmark = pytest.mark.slow


def line(order_id: Any, **fields: Any) -> str:
    return json.dumps(
        {"namespace": "accept", "name": "three_steps", "context": {"order_id": order_id}, **fields}
    )


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_line_is_a_task_and_bad_lines_are_named(
    cli: Cli, tasker: Tasker, tmp_path: Path
) -> None:
    # Given a task made earlier with key k-1, and a file of good and bad lines
    earlier, _ = tasker.create_task(
        TaskRequest("three_steps", {"order_id": 1}, namespace="accept", idempotency_key="k-1")
    )
    path = write(
        tmp_path,
        line(1, idempotency_key="k-1"),  # line 1: exists already
        line(2, tags=["bulk"]),  # line 2: new
        "",  # line 3: blank, skipped
        line("x"),  # line 4: fails the schema
        json.dumps({"name": "no_such", "context": {}}),  # line 5: unknown template
        line(3, colour="red"),  # line 6: unknown field
        line(4, idempotency_key="k-1"),  # line 7: conflicts with line 1
    )

    # When the file is created
    result = cli("task", "create", "--from-file", str(path))

    # Then the summary and one line per failure, exit 1, and the good lines are tasks
    assert result.code == 1, result.err
    assert result.out.strip() == "created 1, existing 1, failed 4"
    errors = result.err.strip().splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 4", "line 5", "line 6", "line 7"]
    assert "'x' is not of type 'integer'" in errors[0]
    assert "no template default/no_such" in errors[1]
    assert "unknown field 'colour'" in errors[2]
    assert "idempotency key 'k-1' is used by an earlier item" in errors[3]
    tasks = tasker.list_tasks()
    assert len(tasks) == 2
    new = next(t for t in tasks if t["id"] != earlier)
    assert new["context"] == {"order_id": 2} and new["tags"] == ["bulk"]
    assert new["initiator"] is None


def test_json_output_and_stdin_and_a_second_run_creates_nothing(cli: Cli, tasker: Tasker) -> None:
    # Given two keyed lines on stdin
    text = "\n".join([line(10, idempotency_key="a"), line(11, idempotency_key="b")])

    # When created twice with --json
    first = cli.ok("task", "create", "--from-file", "-", "--json", stdin=text).json()
    second = cli.ok("task", "create", "--from-file", "-", "--json", stdin=text).json()

    # Then the first made both, the second found both, by line
    assert (first["created"], first["existing"], first["failed"]) == (2, 0, 0)
    assert [r["line"] for r in first["results"]] == [1, 2]
    assert (second["created"], second["existing"], second["failed"]) == (0, 2, 0)
    assert [r["task_id"] for r in second["results"]] == [r["task_id"] for r in first["results"]]
    assert all(r["created"] is False and r["error"] is None for r in second["results"])
    assert len(tasker.list_tasks()) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"name": "three_steps", ', "line 2 is not valid JSON"),
        ('["three_steps"]', "line 2 is a JSON list, not an object"),
    ],
)
def test_a_file_that_is_not_json_lines_exits_2_and_creates_nothing(
    cli: Cli, tasker: Tasker, tmp_path: Path, bad: str, message: str
) -> None:
    path = write(tmp_path, line(1), bad, line(2))

    result = cli("task", "create", "--from-file", str(path))

    assert result.code == 2
    assert message in result.err and "nothing was created" in result.err
    assert tasker.list_tasks() == []


def test_from_file_refuses_single_task_options_and_a_missing_file(
    cli: Cli, tasker: Tasker, tmp_path: Path
) -> None:
    path = write(tmp_path, line(1))
    both = cli("task", "create", "three_steps", "--from-file", str(path))
    assert both.code == 2 and "not with NAME" in both.err
    keyed = cli("task", "create", "--from-file", str(path), "--idempotency-key", "k")
    assert keyed.code == 2 and "--idempotency-key" in keyed.err
    missing = cli("task", "create", "--from-file", str(tmp_path / "absent.jsonl"))
    assert missing.code == 2 and "cannot read --from-file" in missing.err
    neither = cli("task", "create")
    assert neither.code == 2 and "give a template NAME, or --from-file PATH" in neither.err
    assert tasker.list_tasks() == []
