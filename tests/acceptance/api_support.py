"""Running the real REST API as a uvicorn subprocess, on a database of its own.

Each test module starts one server per backend (module scope) on a free port of
127.0.0.1, with ``TASKER_DATABASE_URL`` pointing at a database made for that module and
``TASKER_TEMPLATES`` at the templates below. Steps run in the test process
(``run_until_final`` against the same database), so the API is driven as an operator
would: it creates, inspects, retries, resolves and cancels; workers execute.

When a server stops, its log must hold no traceback: an unexpected exception would be a
500 somewhere, even one no assertion looked at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tasker.definitions import TemplateRegistry
from tasker.facade import Tasker
from tasker.runtime.runner import run_until_final
from tasker.store import open_database
from tasker.store.migrations import upgrade

ADMIN_URL = os.environ.get(
    "TASKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

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

ORDER_V1 = """\
namespace: apitest
name: order
version: 1.0.0
description: Validate, charge, ship
context_schema:
  type: object
  required: [order_id]
  properties:
    order_id: {type: integer}
    note: {type: string}
steps:
  - name: validate
    handler: tasker.builtin_handlers:noop
  - name: charge
    handler: tasker.builtin_handlers:noop
    depends_on: [validate]
  - name: ship
    handler: tasker.builtin_handlers:noop
    depends_on: [charge]
"""
ORDER_V2 = ORDER_V1.replace("version: 1.0.0", "version: 2.0.0").replace(
    "Validate, charge, ship", "Version two"
)

# charge fails for good until the file named by context.gate exists; notify runs beside it.
GATED = """\
namespace: apitest
name: gated
version: 1.0.0
steps:
  - name: prepare
    handler: tasker.builtin_handlers:noop
  - name: charge
    handler: api_test_handlers:gated
    depends_on: [prepare]
    max_attempts: 1
  - name: notify
    handler: tasker.builtin_handlers:echo
    depends_on: [prepare]
    config: {sent: true}
  - name: ship
    handler: tasker.builtin_handlers:noop
    depends_on: [charge, notify]
"""

# Only the pagination test creates tasks here, so it can count them.
PAGED = """\
namespace: apipaged
name: paged
version: 1.0.0
steps:
  - name: only
    handler: tasker.builtin_handlers:noop
"""

# Dynamic workflows: route takes the branch context.choose; approve waits for a signal.
ROUTED = """\
namespace: apitest
name: routed
version: 1.0.0
steps:
  - name: route
    handler: api_test_handlers:route
    branches: [express, standard]
  - name: express
    handler: tasker.builtin_handlers:noop
    depends_on: [route]
  - name: standard
    handler: tasker.builtin_handlers:noop
    depends_on: [route]
  - name: approve
    depends_on: [express, standard]
    join: any
    wait_for: approval
  - name: ship
    handler: api_test_handlers:ship
    depends_on: [approve]
"""

# A schedule the server stores at start (its tasks never fire here: no worker runs).
SCHEDULED = """\
namespace: apisched
name: nightly
version: 1.0.0
schedules:
  - {name: at_two, cron: "0 2 * * *", timezone: Europe/Paris, catchup: none}
steps:
  - name: build
    handler: tasker.builtin_handlers:noop
"""

HANDLERS = """\
from pathlib import Path

from tasker import Branch, PermanentError


def route(step):
    return Branch(*step.context["choose"], results={"chose": step.context["choose"]})


def ship(step):
    return {"approval": step.results["approve"], "route": step.ancestor("route")}


def gated(step):
    gate = Path(step.context["gate"])
    if not gate.exists():
        raise PermanentError(f"gate {gate.name} is closed")
    return {"opened": gate.name}
"""


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _server_url(dbname: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@contextmanager
def module_database(request: pytest.FixtureRequest, backend: str, root: Path) -> Iterator[str]:
    """A migrated database for one test module: a SQLite file, or a PostgreSQL database
    cloned from the session's migrated template (tests/conftest.py)."""
    if backend == "sqlite":
        url = f"sqlite:///{root}/tasker.db"
        db = open_database(url)
        try:
            upgrade(db)
        finally:
            db.close()
        yield url
        return
    template: str = request.getfixturevalue("postgres_template")
    name = f"tasker_api_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield _server_url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database under a running server (its connections are terminated)."""
    _admin(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)")


def write_project(root: Path) -> Path:
    """Templates and the handler module under ``root``; returns the templates folder."""
    templates = root / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "order_v1.yaml": ORDER_V1,
        "order_v2.yaml": ORDER_V2,
        "gated.yaml": GATED,
        "paged.yaml": PAGED,
        "routed.yaml": ROUTED,
        "scheduled.yaml": SCHEDULED,
    }.items():
        (templates / name).write_text(text)
    handlers = root / "handlers"
    handlers.mkdir(exist_ok=True)
    (handlers / "api_test_handlers.py").write_text(HANDLERS)
    (root / "gates").mkdir(exist_ok=True)
    return templates


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiServer:
    base_url: str
    db_url: str
    root: Path
    env: dict[str, str]
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    def gate(self, name: str) -> Path:
        """A gate file for the ``gated`` template (closed until created)."""
        return self.root / "gates" / name

    def tasker(self) -> Tasker:
        """A Tasker on the server's database with its templates, to run steps here."""
        return Tasker(
            open_database(self.db_url), TemplateRegistry.from_paths([str(self.templates)])
        )

    def run(self, task_id: int) -> str:
        """Run the task's steps in this process until it is final; returns its status."""
        with self.tasker() as tasker:
            return run_until_final(tasker, task_id, max_wait_seconds=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real ``tasker`` CLI against the server's database."""
        result = subprocess.run(
            [sys.executable, "-m", "tasker.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def create_tokens(self, scopes: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """An API token per name with its scopes (``tasker auth token create``)."""
        tokens = {}
        for name, granted in scopes.items():
            made = self.cli("auth", "token", "create", "--name", name, "--scopes", *granted)
            assert made.returncode == 0, made.stderr
            tokens[name] = made.stdout.strip()
        return tokens


def server_env(db_url: str, templates: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKER_")}
    handlers = str(templates.parent / "handlers")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (handlers, env.get("PYTHONPATH")) if p)
    env.update({"TASKER_DATABASE_URL": db_url, "TASKER_TEMPLATES": str(templates), **extra})
    return env


@contextmanager
def running_server(
    db_url: str, root: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[ApiServer]:
    """``uvicorn tasker.api:app_from_settings --factory`` until the block ends."""
    templates = write_project(root)
    port = free_port()
    env = server_env(db_url, templates, extra_env or {})
    log = root / f"server-{port}.log"
    command = [
        sys.executable, "-m", "uvicorn", "tasker.api:app_from_settings", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = ApiServer(f"http://127.0.0.1:{port}", db_url, root, env, log)
        sys.path.insert(0, str(root / "handlers"))
        try:
            _wait_until_live(server, process)
            yield server
        finally:
            sys.path.remove(str(root / "handlers"))
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, f"the server logged a traceback:\n{text}"


def _wait_until_live(server: ApiServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {server.log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{server.base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not start: {server.log.read_text(errors='replace')}")


def create_task(client: httpx.Client, name: str = "order", **fields: Any) -> dict[str, Any]:
    """POST a task of ``apitest/<name>`` (context ``{"order_id": 1}`` unless given); 201."""
    body = {"namespace": "apitest", "name": name, "context": {"order_id": 1}, **fields}
    response = client.post("/v1/tasks", json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the contract's error shape with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@contextmanager
def module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, label: str
) -> Iterator[ApiServer]:
    """A server on its own database for one test module and backend (``request.param``)."""
    root = tmp_path_factory.mktemp(f"{label}-{request.param}")
    with module_database(request, request.param, root) as url, running_server(url, root) as server:
        yield server
