"""``tasker task create --from-file tasks.jsonl``: one task per line, created in bulk.

Each line is a JSON object with the keys of ``POST /v1/tasks`` (``name``, ``namespace``,
``version``, ``context``, ``idempotency_key``, ``initiator``, ``source_system``, ``reason``,
``tags``, ``run_at``, ``delay_seconds``, ``priority``). A file that is not JSON lines
(a line that does not parse, or is not an object) is bad input: exit 2, nothing created.
An object that is not a valid request, or that the engine refuses, is that line's error
and the other lines are still created (``Tasker.create_tasks``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from tasker.cli import common
from tasker.clock import parse_utc
from tasker.engine.batch import BatchItemResult
from tasker.engine.creation import TaskRequest
from tasker.exceptions import ValidationError
from tasker.facade import Tasker

TEXT_FIELDS = ("namespace", "name", "version", "idempotency_key")
OPTIONAL_TEXT_FIELDS = ("initiator", "source_system", "reason")
FIELDS = frozenset(
    (*TEXT_FIELDS, *OPTIONAL_TEXT_FIELDS, "context", "tags", "run_at", "delay_seconds", "priority")
)


@dataclass(frozen=True)
class Line:
    number: int  # from 1, as an editor shows it
    document: dict[str, Any]


def read_lines(path: Path) -> list[Line]:
    """Every non-blank line of ``path`` (``-``: standard input) as a JSON object; a
    ValidationError (exit 2) naming the first line that is not one."""
    text = common.read_text(path, f"--from-file {path}")
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "nothing was created"
            ) from None
        except RecursionError:
            raise ValidationError(
                f"{path}: line {number} is nested too deeply; nothing was created"
            ) from None
        if not isinstance(document, dict):
            raise ValidationError(
                f"{path}: line {number} is a JSON {type(document).__name__}, not an object "
                "(one task per line); nothing was created"
            )
        lines.append(Line(number, document))
    return lines


def task_request(document: dict[str, Any]) -> TaskRequest:
    """The request a line asks for; a ValidationError listing every wrong field."""
    problems = [f"unknown field {key!r}" for key in sorted(set(document) - FIELDS)]
    name = document.get("name")
    if not isinstance(name, str) or not name:
        problems.append("name: a template name (text) is required")
    for key in (*TEXT_FIELDS[:1], *TEXT_FIELDS[2:], *OPTIONAL_TEXT_FIELDS):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{key}: expected non-empty text, got {json.dumps(value)}")
    context = document.get("context", {})
    if not isinstance(context, dict):
        problems.append(f"context: expected an object, got {type(context).__name__}")
    tags = document.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append("tags: expected a list of text")
    run_at = document.get("run_at")
    if run_at is not None:
        try:
            run_at = parse_utc(run_at) if isinstance(run_at, str) else None
        except (ValueError, OverflowError):
            run_at = None
        if run_at is None:
            problems.append("run_at: expected an ISO 8601 time such as 2026-01-31T14:00:00Z")
    delay = document.get("delay_seconds")
    if delay is not None and (
        isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay)
    ):
        problems.append(f"delay_seconds: expected a number, got {json.dumps(delay)}")
    priority = document.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        problems.append(f"priority: expected an integer, got {json.dumps(priority)}")
    if problems:
        raise ValidationError("; ".join(problems))
    return TaskRequest(
        name=str(name),
        context=context,
        namespace=document.get("namespace") or "default",
        version=document.get("version"),
        idempotency_key=document.get("idempotency_key"),
        initiator=document.get("initiator"),
        source_system=document.get("source_system"),
        reason=document.get("reason"),
        tags=tuple(tags),
        run_at=run_at,
        delay_seconds=delay,
        priority=priority,
    )


def create_from_file(tasker: Tasker, path: Path, *, as_json: bool) -> int:
    """Create the file's tasks; print the counts and each failed line. Returns the exit
    code: 0 when every line made or found its task, 1 when some failed."""
    lines = read_lines(path)
    results: dict[int, BatchItemResult] = {}
    requests: list[TaskRequest] = []
    positions: list[int] = []  # index in lines of each request
    for index, line in enumerate(lines):
        try:
            requests.append(task_request(line.document))
        except ValidationError as exc:
            results[index] = BatchItemResult(index, None, False, f"item {index}: {exc}")
        else:
            positions.append(index)
    for result in tasker.create_tasks(requests, actor=common.actor()):
        results[positions[result.index]] = result.at(positions[result.index])
    ordered = [results[index] for index in range(len(lines))]
    if requests:
        # Store every template, so workers and other processes can see them (as one
        # `task create` does once its request is known valid).
        tasker.register_templates()
    created = sum(r.created for r in ordered)
    failed = sum(r.error is not None for r in ordered)
    existing = len(ordered) - created - failed
    if as_json:
        common.print_json(
            {
                "results": [
                    {
                        "line": line.number,
                        "task_id": r.task_id,
                        "created": r.created,
                        "error": None if r.problem is None else f"line {line.number}: {r.problem}",
                    }
                    for line, r in zip(lines, ordered, strict=True)
                ],
                "created": created,
                "existing": existing,
                "failed": failed,
            }
        )
    else:
        typer.echo(f"created {created}, existing {existing}, failed {failed}")
        for line, r in zip(lines, ordered, strict=True):
            if r.problem is not None:
                typer.echo(common.one_line(f"line {line.number}: {r.problem}"), err=True)
    return common.EXIT_TASK_FAILED if failed else common.EXIT_OK
