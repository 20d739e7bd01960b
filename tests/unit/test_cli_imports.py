"""The CLI starts fast because it imports only what the command needs (issue 16, item 5):
`tasker --version` loads no command at all, and the read commands load neither the API
(FastAPI, uvicorn), OpenTelemetry, jsonschema, httpx, prometheus_client, nor psycopg for a
SQLite user. Each case runs a fresh interpreter with ``-X importtime`` and reads the
modules it imported: a forbidden one fails the test, and so does a count past the budget
(module counts, not times: timing never decides a test). docs/performance.md has the
figures; tests/acceptance/test_cli_startup.py runs the read commands on real databases.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

# What no read command needs. (`tasker serve`, `tasker worker` and validation import them.)
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
# `--version` needs no command: not the facade, not the database, not Rich.
NOT_FOR_VERSION = (
    *HEAVY,
    "tasker.facade",
    "tasker.definitions",
    "tasker.engine",
    "rich",
    "sqlite3",
)

# Measured when the budgets were set (Python 3.11, the dev lock): 166 and 267 modules.
# Before the lazy imports `tasker --version` imported 687 and `tasker task show` 735.
VERSION_BUDGET = 200
READ_COMMANDS_BUDGET = 320

_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def imported_modules(*python_args: str) -> list[str]:
    """Every module a fresh ``python -X importtime *python_args`` imports, in order."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *python_args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [m.group(1) for line in done.stderr.splitlines() if (m := _LINE.match(line))]


def offenders(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules for f in forbidden if m == f or m.startswith(f"{f}.")})


def test_the_version_imports_no_command() -> None:
    # When `python -m tasker --version` runs
    modules = imported_modules("-m", "tasker", "--version")
    # Then it imports nothing a command needs, and stays within its budget
    assert offenders(modules, NOT_FOR_VERSION) == []
    assert len(modules) <= VERSION_BUDGET, f"{len(modules)} modules imported"


def test_the_read_commands_import_nothing_heavy() -> None:
    # When the modules behind task show/list, templates list, events tail and db status
    # are imported, with the SQLite backend they open
    modules = imported_modules(
        "-c",
        "import tasker.cli.main, tasker.cli.task, tasker.cli.templates, tasker.cli.events,"
        " tasker.cli.db, tasker.store.sqlite",
    )
    # Then none of the heavy dependencies comes with them, and the count stays in budget
    assert offenders(modules, HEAVY) == []
    assert len(modules) <= READ_COMMANDS_BUDGET, f"{len(modules)} modules imported"


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        (["yaml", "yamlish", "httpx._main", "tasker.facade"], ["httpx._main", "yaml"]),
        (["tasker.cli", "rich_click"], []),
    ],
)
def test_offenders_match_whole_package_names(modules: list[str], expected: list[str]) -> None:
    assert offenders(modules, HEAVY) == expected
