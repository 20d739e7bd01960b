"""Running the dashboard for real: ``tasker serve`` and ``tasker worker --burst`` as
subprocesses on a database of their own, and headless Chromium from the Debian package
(``/usr/bin/chromium``) driven by Playwright. Playwright's own browser download is never
used: the machines have no access to it.

The templates and the handler module are those of the API acceptance tests
(``tests/acceptance/api_support.py``), so a ``gated`` task fails for good until its gate
file exists, and a retry from the page then completes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# api_support lives beside the API acceptance tests, which are no package.
sys.path.insert(0, str(Path(__file__).parents[1] / "acceptance"))
from api_support import (
    BACKENDS,
    free_port,
    module_database,
    server_env,
    write_project,
)

__all__ = ["BACKENDS", "Dashboard", "module_database", "require_browser", "serving"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("TASKER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# One step fanning out to 998 and back in: 1,000 steps on three levels.
def wide_template(width: int = 998) -> str:
    lines = [
        "namespace: browser",
        "name: wide",
        "version: 1.0.0",
        "steps:",
        "  - name: start",
        "    handler: tasker.builtin_handlers:noop",
    ]
    for index in range(width):
        lines += [
            f"  - name: part_{index:04d}",
            "    handler: tasker.builtin_handlers:noop",
            "    depends_on: [start]",
        ]
    parts = ", ".join(f"part_{index:04d}" for index in range(width))
    lines += ["  - name: finish", "    handler: tasker.builtin_handlers:noop"]
    lines += [f"    depends_on: [{parts}]"]
    return "\n".join(lines) + "\n"


def require_browser() -> None:
    """Skip (loudly) without Chromium or Playwright; with CI=true, fail instead."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        problem = f"the playwright package is not installed ({exc})"
    if problem is None and not Path(CHROMIUM).exists():
        problem = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if problem is None:
        return
    if IN_CI:
        pytest.fail(problem + " (CI=true: the browser tests are required)")
    pytest.skip(problem + " -- SKIPPING the browser tests")


@dataclass
class Dashboard:
    base_url: str
    db_url: str
    root: Path
    env: dict[str, str]
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def gate(self, name: str) -> Path:
        return self.root / "gates" / name

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "tasker.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback (most recent call last)" not in result.stderr, result.stderr
        return result

    def work(self) -> None:
        """A real worker runs every step it can, then exits (``--burst``)."""
        done = self.cli("worker", "--burst", "--grace-seconds", "5")
        assert done.returncode == 0, done.stderr

    def create(self, name: str = "order", token: str | None = None, **fields: Any) -> int:
        body = {"namespace": "apitest", "name": name, "context": {"order_id": 1}, **fields}
        with self.client(token) as client:
            response = client.post("/v1/tasks", json=body)
        assert response.status_code == 201, response.text
        task_id: int = response.json()["id"]
        return task_id

    def gated(self, gate: str, token: str | None = None) -> int:
        return self.create("gated", token, context={"gate": str(self.gate(gate))})

    def status(self, task_id: int, token: str | None = None) -> str:
        with self.client(token) as client:
            status: str = client.get(f"/v1/tasks/{task_id}").json()["status"]
        return status


@contextmanager
def serving(
    db_url: str, root: Path, extra_env: Mapping[str, str] | None = None, *, project: bool = True
) -> Iterator[Dashboard]:
    """``tasker serve`` on a free port until the block ends; its log must hold no
    traceback. ``project``: with the test templates and handlers (else only the database
    and what it stores, as after ``tasker demo``)."""
    port = free_port()
    if project:
        templates = write_project(root)
        (templates / "wide.yaml").write_text(wide_template())
        env = server_env(db_url, templates, extra_env or {})
    else:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
        env.update({"TASKER_DATABASE_URL": db_url, **(extra_env or {})})
    log = root / f"serve-{port}.log"
    command = [sys.executable, "-m", "tasker.cli", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        dashboard = Dashboard(f"http://127.0.0.1:{port}", db_url, root, env, log)
        try:
            _wait_until_live(dashboard, process)
            yield dashboard
        finally:
            process.terminate()
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, f"tasker serve logged a traceback:\n{text}"


def _wait_until_live(dashboard: Dashboard, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tasker serve exited: {dashboard.log.read_text()}")
        try:
            if httpx.get(f"{dashboard.base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"tasker serve did not start: {dashboard.log.read_text()}")
