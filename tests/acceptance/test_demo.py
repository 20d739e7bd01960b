"""`tasker demo` as a new user runs it: a real subprocess, an empty directory, no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEMO_TIME_LIMIT_SECONDS = 30.0


def tasker_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-m", "tasker.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_demo_runs_the_examples_and_shows_their_outcomes(tmp_path: Path) -> None:
    # Given an empty directory
    demo_dir = tmp_path / "demo"

    # When a new user runs the demo (twice: the database is recreated each time)
    for _ in range(2):
        started = time.monotonic()
        result = tasker_cli("demo", "--dir", str(demo_dir), cwd=tmp_path)
        elapsed = time.monotonic() - started

        # Then it succeeds quickly and says how each workflow ended
        assert result.returncode == 0, result.stdout + result.stderr
        assert elapsed < DEMO_TIME_LIMIT_SECONDS
        out = result.stdout
        assert "[ok] E-commerce order (ecommerce_order): complete" in out
        assert "charge succeeded on attempt 3" in out
        assert "[ok] Data pipeline (data_pipeline): complete" in out
        assert "extract found 4 data sets, one transform ran per data set" in out
        assert "[ok] Expense approval (expense_approval): complete" in out
        assert "manager_approval waited for the signal approval" in out
        assert "Sent the signal approval" in out
        assert "[ok] Expense over the limit (expense_approval): error" in out
        assert "check_policy failed permanently after 1 attempt (PermanentError" in out
        assert "never ran: manager_approval, notify" in out
        assert "Summary" in out
        assert "tasker task show 1" in out
        assert "tasker serve" in out
        assert (demo_dir / "tasker.db").is_file()

    # And the command it suggests shows the order, recreated as task 1
    url = f"sqlite:///{(demo_dir / 'tasker.db').as_posix()}"
    assert f"TASKER_DATABASE_URL={url} tasker task show 1" in out
    shown = tasker_cli("--database-url", url, "task", "show", "1", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    task = json.loads(shown.stdout)
    assert (task["name"], task["status"]) == ("ecommerce_order", "complete")
    attempts = {step["name"]: step["attempts"] for step in task["steps"]}
    assert attempts == {"validate": 1, "reserve": 1, "charge": 3, "ship": 1, "notify": 1}
    listed = tasker_cli("--database-url", url, "task", "list", "--json", cwd=tmp_path)
    assert [t["id"] for t in json.loads(listed.stdout)] == [4, 3, 2, 1]


def test_run_demo_is_callable_from_python(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from tasker.demo import run_demo; "
    code += "sys.exit(run_demo(Path(sys.argv[1])))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[ok]") == 4
