"""Running the real ``tasker`` CLI as a subprocess, and the templates its tests use.

Every call asserts that stderr holds no traceback: a user never sees one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasker import Settings, Tasker, TaskRequest

TASK_KEYS = {
    "id", "namespace", "name", "version", "status", "context", "idempotency_key",
    "initiator", "source_system", "reason", "tags", "created_at", "completed_at", "steps",
    # delayed start and priority (DESIGN.md, Part 3)
    "run_at", "priority",
    # child workflows (DESIGN.md, Part 3)
    "parent_task_id", "parent_step_id",
}  # fmt: skip
STEP_KEYS = {
    "id", "name", "status", "depends_on", "attempts", "max_attempts", "retryable",
    "results", "error", "next_retry_at", "started_at", "completed_at",
    # dynamic workflows (DESIGN.md, Part 3)
    "join", "branches", "wait_for", "map", "index", "group", "instances",
    "workflow", "child_task_id",
}  # fmt: skip
EVENT_KEYS = {"id", "name", "task_id", "step_id", "step_name", "created_at", "payload"}

THREE_STEPS = """\
namespace: accept
name: three_steps
version: "1.0.0"
description: Three steps, c after a and b
context_schema:
  type: object
  required: [order_id]
  properties:
    order_id: {type: integer}
    note: {type: string}
steps:
  - name: a
    handler: tasker.builtin_handlers:noop
  - name: b
    handler: tasker.builtin_handlers:echo
    depends_on: [a]
    config: {x: 1}
  - name: c
    handler: tasker.builtin_handlers:noop
    depends_on: [a, b]
"""

# charge always fails for good; ship waits for it.
FAILING = """\
namespace: billing
name: charge_and_ship
steps:
  - name: charge
    handler: cli_test_handlers:declined
  - name: ship
    handler: tasker.builtin_handlers:noop
    depends_on: [charge]
"""

HANDLERS = """\
from tasker import PermanentError


def declined(step):
    raise PermanentError("card declined")
"""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Cli:
    """The ``tasker`` command with a fixed environment (database, templates, PYTHONPATH)."""

    env: dict[str, str]

    def __call__(self, *args: str | bytes, timeout: float = 60, stdin: str | None = None) -> Result:
        """Run ``tasker *args``, ``stdin`` on its standard input; a bytes argument is passed
        as is (invalid UTF-8, say)."""
        done = subprocess.run(
            [sys.executable, "-m", "tasker.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str | bytes, stdin: str | None = None) -> Result:
        result = self(*args, stdin=stdin)
        assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tasker.cli", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def with_env(self, **changes: str) -> Cli:
        return Cli({**self.env, **changes})


def write_templates(root: Path) -> tuple[Path, Path]:
    """A directory of templates and one of handler modules; returns both."""
    templates = root / "templates"
    handlers = root / "handlers"
    templates.mkdir()
    handlers.mkdir()
    (templates / "three_steps.yaml").write_text(THREE_STEPS)
    (templates / "charge_and_ship.yaml").write_text(FAILING)
    (handlers / "cli_test_handlers.py").write_text(textwrap.dedent(HANDLERS))
    return templates, handlers


def cli_env(database_url: str, templates: Path | None, handlers: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env["TASKER_DATABASE_URL"] = database_url
    if templates is not None:
        env["TASKER_TEMPLATES"] = str(templates)
    paths = [str(handlers)] if handlers is not None else []
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["COLUMNS"] = "200"  # Rich wraps at 80 columns when stdout is not a terminal
    return env


def open_library(database_url: str, templates: Path) -> Tasker:
    """The library on the CLI's database, for setup and checks (handlers must be importable)."""
    return Tasker.from_settings(Settings(database_url=database_url, templates=(str(templates),)))


def create(tasker: Tasker, name: str, namespace: str, **context: object) -> int:
    task_id, _ = tasker.create_task(TaskRequest(name, dict(context), namespace=namespace))
    return task_id
