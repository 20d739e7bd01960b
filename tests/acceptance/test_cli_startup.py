"""The read commands, run for real on each backend, import nothing they do not use (issue
16, item 5): not the API, OpenTelemetry, httpx, prometheus_client, nor, on SQLite,
psycopg. The module sets are read from ``python -X importtime``; tests/unit/
test_cli_imports.py holds the budgets without a database."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from cli_support import Cli, create

from tasker import Tasker

pytestmark = pytest.mark.slow

# The same list as tests/unit/test_cli_imports.py's (test modules do not import each other).
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "opentelemetry",
    "jsonschema",
    "httpx",
    "prometheus_client",
    "psycopg",
    "psycopg_pool",
    "yaml",
)
_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")

THREE = ("three_steps", "--namespace", "accept")
# Measured when set, `task show`: 358 modules on SQLite, 491 on PostgreSQL (psycopg's);
# 735 before the lazy imports.
BUDGETS = {"sqlite": 450, "postgresql": 600}


def offenders(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules for f in forbidden if m == f or m.startswith(f"{f}.")})


def imported_by(cli: Cli, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tasker", *args],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [m.group(1) for line in done.stderr.splitlines() if (m := _LINE.match(line))]


def test_read_commands_import_only_what_they_use(cli: Cli, tasker: Tasker, db_url: str) -> None:
    # Given a task of a template with a context_schema (whose check needs jsonschema)
    task_id = create(tasker, "three_steps", "accept", order_id=1)
    # The backend's own driver is expected; the other one is not.
    backend = "postgresql" if db_url.startswith("postgres") else "sqlite"
    forbidden = tuple(m for m in HEAVY if not (backend == "postgresql" and "psycopg" in m))
    commands = {
        ("task", "show", str(task_id)): forbidden,
        ("task", "show", str(task_id), "--json"): forbidden,
        ("task", "list"): forbidden,
        ("events", "tail"): forbidden,
        ("db", "status"): forbidden,
        ("health",): forbidden,
        ("workers", "--json"): forbidden,
        # Reading template files takes PyYAML and checking their schemas jsonschema.
        ("templates", "list"): tuple(m for m in forbidden if m not in ("yaml", "jsonschema")),
    }
    for args, heavy in commands.items():
        # When the command runs
        modules = imported_by(cli, *args)
        # Then it imported none of the heavy modules, and stayed within the budget
        assert offenders(modules, heavy) == [], args
        assert len(modules) <= BUDGETS[backend], (args, len(modules))
