"""A rolling deploy: a worker started without some handler modules on its path.

It must not burn other people's work: it claims only the steps whose handlers it loaded,
says at start-up what it serves and what it could not load, and while it is the only live
worker, readiness (library, ``tasker task show``, ``GET /v1/tasks/{id}/readiness``) says
no live worker serves the handler. Workers and the API are real subprocesses, on both
backends; the worker "without handlers" is the same templates with the handler module's
folder left off its PYTHONPATH.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_support import free_port
from cli_support import Cli, cli_env

from tasker import FakeClock, Settings, Tasker, TaskRequest

pytestmark = pytest.mark.slow

ORDER = """\
namespace: shop
name: order
version: 1.0.0
defaults: {max_attempts: 2, backoff: {base_seconds: 0.01, max_seconds: 0.02}}
steps:
  - name: validate
    handler: shop_handlers:validate
  - name: charge
    handler: shop_handlers:charge
    depends_on: [validate]
"""
PING = """\
namespace: ops
name: ping
steps:
  - name: ping
    handler: tasker.builtin_handlers:noop
"""
HANDLERS = """\
def validate(step):
    return {"valid": True}


def charge(step):
    return {"charged": step.results["validate"]["valid"]}
"""
NOT_LOADED = (
    "handler 'shop_handlers:validate': module 'shop_handlers' does not import: "
    "ModuleNotFoundError: No module named 'shop_handlers'"
)


class Project:
    """Templates (shop/order needs shop_handlers; ops/ping only built-ins) on one database."""

    def __init__(self, db_url: str, root: Path):
        self.db_url = db_url
        self.templates = root / "templates"
        self.handlers = root / "handlers"
        # An older release: it knew only ops/ping
        self.older_templates = root / "older_templates"
        for folder in (self.templates, self.handlers, self.older_templates):
            folder.mkdir()
        (self.templates / "order.yaml").write_text(ORDER)
        (self.templates / "ping.yaml").write_text(PING)
        (self.older_templates / "ping.yaml").write_text(PING)
        (self.handlers / "shop_handlers.py").write_text(textwrap.dedent(HANDLERS))

    def cli(self, *, with_handlers: bool, older: bool = False) -> Cli:
        templates = self.older_templates if older else self.templates
        return Cli(cli_env(self.db_url, templates, self.handlers if with_handlers else None))

    def library(self, clock: FakeClock | None = None) -> Tasker:
        """The library on this database; it only creates and reads, so needs no handler."""
        settings = Settings(database_url=self.db_url, templates=(str(self.templates),))
        return Tasker.from_settings(settings, clock=clock, check_handlers=False)

    def create(self, name: str, namespace: str) -> int:
        with self.library() as tasker:
            return tasker.create_task(TaskRequest(name, namespace=namespace))[0]

    def task(self, task_id: int) -> dict[str, object]:
        with self.library() as tasker:
            return tasker.get_task(task_id)

    def reasons(self, task_id: int, clock: FakeClock | None = None) -> dict[str, str | None]:
        with self.library(clock) as tasker:
            return {row.name: row.blocking_reason for row in tasker.readiness(task_id)}

    def live_workers(self) -> int:
        with self.library() as tasker:
            return len(tasker.live_workers())


@pytest.fixture
def project(db_url: str, tmp_path: Path) -> Project:
    return Project(db_url, tmp_path)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(worker: subprocess.Popen[str]) -> str:
    """SIGTERM the worker; returns its log (stderr) once it exited 0."""
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Traceback" not in err, err
    return err


def steps(task: dict[str, object]) -> list[tuple[str, str, int]]:
    rows = task["steps"]
    assert isinstance(rows, list)
    return [(s["name"], s["status"], s["attempts"]) for s in rows]


@pytest.mark.parametrize(
    "older", [False, True], ids=["same-templates-handler-missing", "older-templates"]
)
def test_a_worker_without_a_handler_leaves_its_steps_to_a_worker_that_has_it(
    project: Project, older: bool
) -> None:
    # Given an order created while the shop handlers were deployed, then a ping
    order = project.create("order", "shop")
    ping = project.create("ping", "ops")

    # When a worker without shop_handlers on its path (with the same templates, or those
    # of an older release without shop/order) runs until it has done the later ping
    old = project.cli(with_handlers=False, older=older).popen("worker", "--grace-seconds", "1")
    try:
        wait_for(lambda: project.task(ping)["status"] == "complete", "the ping to complete")
    finally:
        log = stop(old)

    # Then it never touched the older order: pending, no attempt spent, no step started
    task = project.task(order)
    assert task["status"] == "pending"
    assert steps(task) == [("validate", "pending", 0), ("charge", "pending", 0)]
    with project.library() as tasker:
        assert not [e for e in tasker.events(task_id=order) if e["name"].startswith("step.")]
    assert "failed" not in log

    # When a worker that has the handlers runs
    project.cli(with_handlers=True).ok("worker", "--burst", "--grace-seconds", "1")

    # Then it runs the order, each step once
    task = project.task(order)
    assert task["status"] == "complete"
    assert steps(task) == [("validate", "complete", 1), ("charge", "complete", 1)]


def test_the_worker_says_at_start_up_what_it_serves_and_what_it_cannot_load(
    project: Project,
) -> None:
    # When a worker without shop_handlers on its path starts (and, --burst, finds no work)
    result = project.cli(with_handlers=False).ok("worker", "--burst")

    # Then one INFO line names the template it serves and the handlers it could not load
    (line,) = [line for line in result.err.splitlines() if "serves templates" in line]
    assert " INFO " in line
    assert "serves templates: ops/ping@0.1.0" in line
    assert "does not serve: shop/order@1.0.0" in line
    assert NOT_LOADED in line
    assert "shop_handlers:charge" in line

    # And with the handlers it serves both templates and reports no failure
    result = project.cli(with_handlers=True).ok("worker", "--burst")
    (line,) = [line for line in result.err.splitlines() if "serves templates" in line]
    assert "serves templates: ops/ping@0.1.0, shop/order@1.0.0" in line
    assert "cannot load" not in line


def test_a_worker_with_nothing_to_serve_says_so_and_exits_in_burst(project: Project) -> None:
    # Given pending work it cannot do
    order = project.create("order", "shop")

    # When a worker for namespace shop, without its handlers, starts with --burst
    result = project.cli(with_handlers=False).ok("worker", "--burst", "--namespace", "shop")

    # Then it says it can run nothing, exits 0 at once, and the order is untouched
    assert "serves templates: none" in result.err
    assert "can run no handler" in result.err and "exiting (--burst)" in result.err
    assert steps(project.task(order)) == [("validate", "pending", 0), ("charge", "pending", 0)]


def test_a_burst_worker_exits_when_only_steps_it_cannot_run_are_left(project: Project) -> None:
    # Given pending work of a handler this worker lacks
    order = project.create("order", "shop")

    # When a worker without shop_handlers (serving ops/ping) runs with --burst
    result = project.cli(with_handlers=False)("worker", "--burst", timeout=15)
    assert result.code == 0, result.err

    # Then it exited (nothing it can ever do is left), leaving the order untouched
    assert steps(project.task(order)) == [("validate", "pending", 0), ("charge", "pending", 0)]


@pytest.fixture
def api(project: Project) -> Iterator[httpx.Client]:
    """``tasker serve`` on the project's database."""
    port = free_port()
    server = project.cli(with_handlers=True).popen(
        "serve", "--host", "127.0.0.1", "--port", str(port)
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def live() -> bool:
        assert server.poll() is None, server.communicate()
        try:
            return client.get("/health/live").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(live, "the API server")
        yield client
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=30)
        assert "Traceback" not in err, err


def test_readiness_says_no_live_worker_serves_the_handler_while_only_an_incapable_one_runs(
    project: Project, api: httpx.Client
) -> None:
    order = project.create("order", "shop")

    def readiness() -> dict[str, dict[str, object]]:
        response = api.get(f"/v1/tasks/{order}/readiness")
        assert response.status_code == 200, response.text
        return {row["name"]: row for row in response.json()}

    # Given no worker at all: the contract's readiness, validate ready with no reason
    rows = readiness()
    assert rows["validate"]["ready_for_execution"] and rows["validate"]["blocking_reason"] is None
    assert rows["charge"]["blocking_reason"] == "dependencies_not_satisfied"

    # When the only live worker lacks the shop handlers
    old = project.cli(with_handlers=False).popen("worker", "--grace-seconds", "1")
    try:
        wait_for(lambda: project.live_workers() == 1, "the worker to register")

        # Then the API, the CLI and the library say no live worker serves validate's handler
        rows = readiness()
        assert rows["validate"]["blocking_reason"] == "no_worker_for_handler"
        assert rows["validate"]["ready_for_execution"]
        assert rows["charge"]["blocking_reason"] == "dependencies_not_satisfied"
        shown = project.cli(with_handlers=False).ok("task", "show", str(order)).out
        validate_line = next(line for line in shown.splitlines() if "validate" in line)
        assert "blocked: no live worker serves handler shop_handlers:validate" in validate_line
        assert project.reasons(order)["validate"] == "no_worker_for_handler"
        # (a worker is live only within its lease: 30 s on from now, it would not be)
        later = FakeClock(datetime.now(UTC) + timedelta(seconds=31))
        assert project.reasons(order, later)["validate"] is None
    finally:
        stop(old)

    # When it has stopped: no worker is live, and readiness is the contract's again
    assert readiness()["validate"]["blocking_reason"] is None
    shown = project.cli(with_handlers=False).ok("task", "show", str(order)).out
    validate_line = next(line for line in shown.splitlines() if "validate" in line)
    assert "blocked" not in validate_line and "ready" in validate_line
