"""Handlers are hostile user code: whatever one returns, raises or never finishes, it
fails its own step and nothing else, and the worker goes on (and can always stop).

Each test runs the real worker on both backends; the steps of one task are
independent, so the good and the bad ones are claimed and recorded in one batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import misbehaving_handlers
import pytest
import yaml

from tasker import Settings, Tasker, TaskRequest
from tasker.definitions import TemplateDefinition, TemplateRegistry, parse_template
from tasker.engine import attempts
from tasker.engine.attempts import Outcome
from tasker.exceptions import ValidationError
from tasker.runtime.worker import Worker, WorkerOptions
from tasker.store.database import Database

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
WORKER_SECONDS = 30  # a worker that has not finished by then is wedged


def template(name: str, handlers: dict[str, str], **defaults: Any) -> TemplateDefinition:
    return parse_template(
        {
            "name": name,
            "defaults": {"max_attempts": 1, **defaults},
            "steps": [
                {"name": step, "handler": f"misbehaving_handlers:{handler}"}
                for step, handler in handlers.items()
            ],
        }
    )


def tasker_for(database: Database, definition: TemplateDefinition, **settings: Any) -> Tasker:
    registry = TemplateRegistry()
    registry.add(definition)
    return Tasker(database, registry, settings=Settings(database_url=database.url, **settings))


def run_worker(tasker: Tasker, **options: Any) -> Worker:
    worker = Worker(tasker, WorkerOptions(burst=True, poll_interval_seconds=0.05, **options))
    asyncio.run(asyncio.wait_for(worker.run(), WORKER_SECONDS))
    return worker


def steps_of(tasker: Tasker, task_id: int) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in tasker.get_task(task_id)["steps"]}


UNSTORABLE = {
    "nan": "nan",
    "infinity": "infinity",
    "nul": "nul",
    "surrogate": "surrogate",
    "deep": "deep",
    "too_big": "too_big",
    "not_json": "not_json",
}


@pytest.fixture(params=["thread", "process"])
def pool(request: pytest.FixtureRequest) -> str:
    """Where handlers run: the worker's --pool."""
    value: str = request.param
    return value


def test_an_unstorable_result_fails_its_step_and_no_other(database: Database, pool: str) -> None:
    # Given a task whose steps return NaN, infinity, NUL, a lone surrogate, 5,000 levels
    # of nesting, more than the size limit, a non-JSON object, beside three good steps
    definition = template("unstorable", {**UNSTORABLE, "good_1": "ok", "good_2": "ok"})
    tasker = tasker_for(database, definition, max_result_bytes=1000)
    task_id, _ = tasker.create_task(TaskRequest("unstorable"))

    # When a worker runs it (one claim batch, one outcome batch)
    run_worker(tasker, concurrency=16, batch_size=16, pool=pool)

    # Then every bad step failed for good, saying why; the good ones completed
    steps = steps_of(tasker, task_id)
    for name in UNSTORABLE:
        step = steps[name]
        assert step["status"] == "error", name
        assert step["retryable"] is False, name
        assert step["results"] is None, name
        assert step["error"]["message"].startswith("result is not storable: "), name
    assert "NaN" in steps["nan"]["error"]["message"]
    assert "NUL" in steps["nul"]["error"]["message"]
    assert "surrogate" in steps["surrogate"]["error"]["message"]
    assert "deeper than 64" in steps["deep"]["error"]["message"]
    assert "limit of 1000 bytes" in steps["too_big"]["error"]["message"]
    assert "'object' is not a JSON value" in steps["not_json"]["error"]["message"]
    assert steps["good_1"]["status"] == steps["good_2"]["status"] == "complete"
    assert tasker.get_task(task_id)["status"] == "error"


def test_a_batch_the_database_refuses_is_recorded_row_by_row(database: Database) -> None:
    # Given three claimed steps, one of whose outcomes no database can store
    definition = template("batch", {"a": "ok", "b": "ok", "c": "ok"})
    tasker = tasker_for(database, definition)
    task_id, _ = tasker.create_task(TaskRequest("batch"))
    claimed = {s.name: s for s in tasker.claim("w", 3, lease_seconds=30)}
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]

    # When the outcomes are recorded together, the bad one slipped past every check
    tasker.record(
        [
            Outcome(s.step_id, s.task_id, s.claim_token, results={"v": deep if n == "b" else 1})
            for n, s in claimed.items()
        ],
        "w",
    )

    # Then the good outcomes are stored and the bad one failed its step, saying why
    steps = steps_of(tasker, task_id)
    assert steps["a"]["status"] == steps["c"]["status"] == "complete"
    assert steps["b"]["status"] == "error"
    assert steps["b"]["error"]["class"] == "UnstorableResult"
    assert steps["b"]["error"]["message"].startswith("result is not storable: ")
    assert tasker.get_task(task_id)["status"] == "error"


def test_a_bug_while_recording_fails_no_step_and_propagates(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two claimed steps whose outcomes are fine
    definition = template("bug", {"a": "ok", "b": "ok"})
    tasker = tasker_for(database, definition)
    task_id, _ = tasker.create_task(TaskRequest("bug"))
    claimed = tasker.claim("w", 2, lease_seconds=30)
    outcomes = [Outcome(s.step_id, s.task_id, s.claim_token, results={"v": 1}) for s in claimed]

    # When recording them hits a bug in Tasker itself (not a row the database refuses)
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(attempts, "record_outcomes", broken)
    with pytest.raises(KeyError, match="a bug"):
        tasker.record(outcomes, "w")

    # Then no step was failed for it: both still run under their claims
    steps = steps_of(tasker, task_id)
    assert steps["a"]["status"] == steps["b"]["status"] == "in_progress"
    assert steps["a"]["error"] is None and steps["b"]["error"] is None
    # And once the bug is gone the same outcomes are stored
    monkeypatch.undo()
    tasker.record(outcomes, "w")
    assert tasker.get_task(task_id)["status"] == "complete"


RAISERS = {
    "system_exit": "SystemExit",
    "keyboard_interrupt": "KeyboardInterrupt",
    "escape": "Escape",
    "async_system_exit": "SystemExit",
    "async_keyboard_interrupt": "KeyboardInterrupt",
    "async_escape": "Escape",
    "async_cancelled": "CancelledError",
    "unstorable_error": "ValueError",
    "hostile_message": "_HostileMessage",
    "stop_iteration": "StopIteration",
}


def test_any_exception_a_handler_raises_is_a_failed_attempt(database: Database, pool: str) -> None:
    # Given steps raising SystemExit, KeyboardInterrupt, a BaseException of their own
    # (sync and async), CancelledError, StopIteration, an unstorable message and an
    # unreadable one
    definition = template("raisers", {**{n: n for n in RAISERS}, "good": "ok"})
    tasker = tasker_for(database, definition)
    task_id, _ = tasker.create_task(TaskRequest("raisers"))

    # When a burst worker runs them, it returns on its own (no exit, no wedge)
    worker = run_worker(tasker, concurrency=16, batch_size=16, pool=pool)

    # Then each is a failed attempt of its own step, named by its class
    steps = steps_of(tasker, task_id)
    assert {n: steps[n]["error"]["class"] for n in RAISERS} == RAISERS
    assert all(steps[n]["status"] == "error" and steps[n]["attempts"] == 1 for n in RAISERS)
    assert "\\x00" in steps["unstorable_error"]["error"]["message"]
    assert steps["good"]["status"] == "complete"
    assert worker.executed == len(RAISERS) + 1


@pytest.fixture
def released() -> Iterator[None]:
    misbehaving_handlers.RELEASE.clear()
    yield
    misbehaving_handlers.RELEASE.set()  # let the abandoned thread end with the test


def test_a_hung_sync_handler_frees_its_slot_at_its_timeout(
    database: Database, released: None
) -> None:
    # Given one slot, a step that hangs past its timeout, and three quick steps
    definition = template(
        "hung", {"hang": "hang", "q1": "ok", "q2": "ok", "q3": "ok"}, timeout_seconds=0.3
    )
    tasker = tasker_for(database, definition)
    task_id, _ = tasker.create_task(TaskRequest("hung"))

    # When a worker with --concurrency 1 runs them
    worker = run_worker(tasker, concurrency=1)

    # Then the hung step timed out, its thread is counted as abandoned, and the quick
    # steps each ran at once in the freed slot, on their first attempt
    steps = steps_of(tasker, task_id)
    assert steps["hang"]["error"]["class"] == "TimeoutError"
    assert {n: (steps[n]["status"], steps[n]["attempts"]) for n in ("q1", "q2", "q3")} == {
        n: ("complete", 1) for n in ("q1", "q2", "q3")
    }
    assert worker.abandoned_threads == 1
    assert tasker.metrics.registry.get_sample_value("tasker_abandoned_threads") == 1
    assert [w["abandoned_threads"] for w in tasker.workers()] == [1]


def test_the_process_pool_kills_a_hung_handler_and_survives_a_dying_one(
    database: Database,
) -> None:
    # Given one slot, a step that hangs past its timeout, one whose process exits
    # under it, and two quick steps
    definition = template(
        "killed",
        {"hang": "hang_forever", "exits": "exits_process", "q1": "ok", "q2": "ok"},
        timeout_seconds=1,
    )
    tasker = tasker_for(database, definition)
    task_id, _ = tasker.create_task(TaskRequest("killed"))

    # When a worker with --pool process --concurrency 1 runs them
    worker = run_worker(tasker, concurrency=1, pool="process")

    # Then the hung step's process was killed at the timeout (nothing is abandoned), the
    # dead one failed its own step only, and the quick steps completed
    steps = steps_of(tasker, task_id)
    assert steps["hang"]["error"]["class"] == "TimeoutError"
    assert steps["exits"]["error"]["class"] == "ChildDied"
    assert "exit code 3" in steps["exits"]["error"]["message"]
    assert steps["q1"]["status"] == steps["q2"]["status"] == "complete"
    assert worker.abandoned_threads == 0
    assert worker.killed_processes == 1


HANG_TEMPLATE = {
    "name": "hangs",
    "defaults": {"timeout_seconds": None, "max_attempts": 1},
    "steps": [{"name": "hang", "handler": "misbehaving_handlers:hang_forever"}],
}


@pytest.mark.slow
def test_sigterm_stops_within_grace_and_releases_a_hung_step(db_url: str, tmp_path: Path) -> None:
    # Given a worker process running a sync step that never returns (no timeout)
    (tmp_path / "hangs.yaml").write_text(yaml.safe_dump(HANG_TEMPLATE))
    env = {
        **os.environ,
        "TASKER_DATABASE_URL": db_url,
        "TASKER_TEMPLATES": str(tmp_path / "hangs.yaml"),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC)]),
    }
    log = tmp_path / "worker.log"
    with Tasker.from_settings(Settings.from_env(env)) as tasker, log.open("wb") as output:
        task_id, _ = tasker.create_task(TaskRequest("hangs"))
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasker.cli", "worker", "--grace-seconds", "1"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while steps_of(tasker, task_id)["hang"]["status"] != "in_progress":
                assert time.monotonic() < deadline, "the worker never started the step"
                time.sleep(0.05)

            # When it is sent SIGTERM
            stopped_at = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=15)
            took = time.monotonic() - stopped_at
        finally:
            worker.kill()
            worker.wait()

        # Then it exits 0 within the grace period plus a small bound, and the step is
        # back in the queue with its attempt given back
        assert code == 0, log.read_text()
        assert took < 1 + 8
        step = steps_of(tasker, task_id)["hang"]
        assert step["status"] == "error"
        assert step["error"]["class"] == "WorkerShutdown"
        assert step["attempts"] == 0
        assert step["next_retry_at"] is not None


def test_results_given_by_hand_obey_the_same_limits(database: Database) -> None:
    # Given a failed step and a result-size limit of 100 bytes
    definition = template("by_hand", {"only": "nan"})
    tasker = tasker_for(database, definition, max_result_bytes=100)
    task_id, _ = tasker.create_task(TaskRequest("by_hand"))
    run_worker(tasker)

    # When an operator resolves it with results over the limit, or with NaN in them
    for results in ({"blob": "x" * 200}, {"ratio": float("nan")}):
        with pytest.raises(ValidationError, match="results is not storable"):
            tasker.resolve_step(task_id, "only", reason="by hand", results=results)

    # Then nothing was written: the step is still failed, and fits results resolve it
    assert steps_of(tasker, task_id)["only"]["status"] == "error"
    tasker.resolve_step(task_id, "only", reason="by hand", results={"ratio": 0.5})
    assert steps_of(tasker, task_id)["only"]["status"] == "resolved_manually"


def test_a_worker_without_templates_of_its_own_serves_the_stored_ones(database: Database) -> None:
    # Given a task created by a process that had the template (so it is stored)
    definition = template("stored", {"only": "ok"})
    creator = tasker_for(database, definition)
    task_id, _ = creator.create_task(TaskRequest("stored"))

    # When a worker with no templates of its own (no TASKER_TEMPLATES) runs
    bare = Tasker(database, TemplateRegistry(), settings=Settings(database_url=database.url))
    run_worker(bare)

    # Then it served the stored template, whose handler imports here, and ran the step
    assert steps_of(creator, task_id)["only"]["status"] == "complete"
