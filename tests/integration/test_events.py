"""Events: one per state change, in order, durable consumers, subscribers, webhooks."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from tasker import FakeClock, PermanentError, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.events import EventBus, EventConsumer, RetryPolicy, WebhookSubscriber, verify
from tasker.events.catalog import BY_NAME, render_markdown
from tasker.exceptions import ValidationError
from tasker.runtime.runner import run_until_final
from tasker.runtime.worker import Worker, WorkerOptions
from tasker.store import open_database
from tasker.store.database import Database


def flaky_pipeline() -> Template:
    tpl = Template(
        "pipeline", defaults={"max_attempts": 3, "backoff": {"base_seconds": 0.01, "jitter": 0}}
    )

    @tpl.step()
    def extract(step: Any) -> dict[str, Any]:
        return {"rows": 3}

    @tpl.step(depends_on=[extract])
    def transform(step: Any) -> dict[str, Any]:
        if step.attempt < 3:
            raise RuntimeError("flaky")
        return {"rows": step.results["extract"]["rows"] * 2}

    @tpl.step(depends_on=[extract])
    def audit(step: Any) -> dict[str, Any]:
        step.publish("pipeline.audited", {"rows": step.results["extract"]["rows"]})
        return {}

    @tpl.step(depends_on=[transform, audit])
    def load(step: Any) -> dict[str, Any]:
        return {"loaded": step.results["transform"]["rows"]}

    return tpl


@pytest.fixture
def tasker(database: Database) -> Iterator[Tasker]:
    registry = TemplateRegistry()
    registry.add(flaky_pipeline())
    yield Tasker(database, registry, clock=FakeClock())


def state_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["name"].startswith(("task.", "step."))]


def test_each_state_change_has_exactly_one_event_in_history_order(tasker: Tasker) -> None:
    task_id, _ = tasker.create_task(TaskRequest("pipeline"))
    assert run_until_final(tasker, task_id) == "complete"
    events = tasker.events(task_id=task_id)
    transitions = [t for t in tasker.transitions(task_id) if t["from_state"] is not None]
    # one event per transition, none duplicated
    assert len(state_events(events)) == len(transitions)
    assert len({e["id"] for e in events}) == len(events)
    # and per entity, the events follow the history's order
    for step_name in ("extract", "transform", "audit", "load"):
        history = [t["to_state"] for t in transitions if t["step_name"] == step_name]
        published = [
            e["payload"]["to_state"] for e in state_events(events) if e["step_name"] == step_name
        ]
        assert published == history
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["name"] in BY_NAME or e["name"] == "pipeline.audited" for e in events)
    assert Counter(e["name"] for e in events)["step.retry_scheduled"] == 2


def test_payloads_carry_identity_attempts_durations_and_errors(tasker: Tasker) -> None:
    task_id, _ = tasker.create_task(TaskRequest("pipeline"))
    run_until_final(tasker, task_id)
    events = tasker.events(task_id=task_id)
    retry = next(e for e in events if e["name"] == "step.retry_scheduled")
    assert retry["step_name"] == "transform"
    assert retry["payload"]["error_class"] == "RuntimeError"
    assert retry["payload"]["next_retry_at"] is not None
    assert (retry["payload"]["attempt"], retry["payload"]["max_attempts"]) == (1, 3)
    assert (retry["payload"]["namespace"], retry["payload"]["name"]) == ("default", "pipeline")
    done = next(e for e in events if e["name"] == "step.completed" and e["step_name"] == "load")
    assert done["payload"]["results_size"] == len(json.dumps({"loaded": 6}))
    assert "results" not in done["payload"]
    assert done["payload"]["duration_seconds"] is not None
    custom = [e for e in events if e["name"] == "pipeline.audited"]
    assert [c["payload"] for c in custom] == [{"rows": 3}]


def test_a_custom_event_exists_only_if_its_step_completed(database: Database) -> None:
    tpl = Template("publisher", defaults={"max_attempts": 1})

    @tpl.step()
    def shout(step: Any) -> None:
        step.publish("order.shipped", {"id": 1})
        raise PermanentError("then failed")

    registry = TemplateRegistry()
    registry.add(tpl)
    tasker = Tasker(database, registry, clock=FakeClock())
    task_id, _ = tasker.create_task(TaskRequest("publisher"))
    assert run_until_final(tasker, task_id) == "error"
    assert "order.shipped" not in {e["name"] for e in tasker.events(task_id=task_id)}


@pytest.mark.parametrize("name", ["task.hijack", "workflow.x", "step.done", "Bad Name", "solo"])
def test_publish_refuses_reserved_or_malformed_names(name: str) -> None:
    from tasker.runtime.context import StepContext

    ctx = StepContext(1, 1, "s", 1, 1, {}, {}, {})
    with pytest.raises(ValidationError):
        ctx.publish(name, {})


def test_consumer_resumes_after_restart_and_sees_every_event_once_in_order(
    tasker: Tasker,
) -> None:
    for _ in range(3):
        task_id, _ = tasker.create_task(TaskRequest("pipeline"))
        run_until_final(tasker, task_id)
    everything = [e["id"] for e in tasker.events(limit=10_000)]
    # Given a consumer that handles part of the log, then stops
    first = EventConsumer(tasker, "billing")
    seen = [e["id"] for e in first.poll(limit=10)]
    first.commit(seen[-1])
    first.release()
    # When a new process starts the same consumer
    second = EventConsumer(tasker, "billing")
    while batch := second.poll(limit=7):
        seen += [e["id"] for e in batch]
        second.commit(batch[-1]["id"])
    # Then it continued where the first stopped: every event once, in order
    assert seen == everything
    # and while it holds the lease, another copy gets nothing
    assert EventConsumer(tasker, "billing").poll() == []


def test_a_failing_subscriber_does_not_affect_tasks_or_other_subscribers(
    tasker: Tasker,
) -> None:
    bus = EventBus(retry=RetryPolicy(attempts=2, base_seconds=0.01))
    got: list[str] = []
    calls = Counter[str]()

    @bus.subscribe("step.*")
    def broken(event: dict[str, Any]) -> None:
        calls["broken"] += 1
        raise RuntimeError("subscriber bug")

    bus.subscribe("*", lambda event: got.append(event["name"]))
    tasker.clock = __import__("tasker").SystemClock()
    task_id, _ = tasker.create_task(TaskRequest("pipeline"))
    worker = Worker(tasker, WorkerOptions(concurrency=4, burst=True), bus=bus)
    asyncio.run(worker.run())
    assert tasker.task_status(task_id) == "complete"
    all_names = [e["name"] for e in tasker.events(task_id=task_id)]
    assert got == all_names
    step_events = sum(1 for n in all_names if n.startswith("step."))
    assert calls["broken"] == 2 * step_events  # each retried once, then given up


class _Receiver(http.server.BaseHTTPRequestHandler):
    secret = "s3cret"
    received: ClassVar[list[dict[str, Any]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(self.secret, body, self.headers["Tasker-Signature"])
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
        elif not ok:
            self.send_response(401)
        else:
            type(self).received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_posts_signed_events_and_retries_failures(tasker: Tasker) -> None:
    _Receiver.received = []
    _Receiver.fail_first = 1
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bus = EventBus(retry=RetryPolicy(attempts=3, base_seconds=0.01))
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        bus.subscribe("task.*", WebhookSubscriber(url, _Receiver.secret))
        task_id, _ = tasker.create_task(TaskRequest("pipeline"))
        run_until_final(tasker, task_id)
        from tasker.events import EventDispatcher

        dispatcher = EventDispatcher(tasker, bus, name="hooks")
        while asyncio.run(dispatcher.run_once()):
            pass
    finally:
        server.shutdown()
        server.server_close()
    assert [e["name"] for e in _Receiver.received] == ["task.started", "task.completed"]
    assert _Receiver.fail_first == 0  # the first POST failed and was retried


def test_metrics_move_with_the_work(tasker: Tasker) -> None:
    task_id, _ = tasker.create_task(TaskRequest("pipeline"))
    run_until_final(tasker, task_id)
    registry = tasker.metrics.registry

    def value(name: str) -> float:
        sample = registry.get_sample_value(name)
        assert sample is not None, name
        return sample

    assert value("tasker_tasks_created_total") == 1
    assert value("tasker_tasks_completed_total") == 1
    assert value("tasker_steps_completed_total") == 4
    assert value("tasker_steps_retried_total") == 2
    assert value("tasker_steps_started_total") == 6
    assert value("tasker_step_duration_seconds_count") == 6
    assert value("tasker_task_duration_seconds_count") == 1


def test_retention_prunes_in_batches(tasker: Tasker) -> None:
    ids = []
    for _ in range(3):
        task_id, _ = tasker.create_task(TaskRequest("pipeline"))
        run_until_final(tasker, task_id)
        ids.append(task_id)
    assert isinstance(tasker.clock, FakeClock)
    tasker.clock.advance(3600)
    open_id, _ = tasker.create_task(TaskRequest("pipeline"))
    cutoff = tasker.now() - timedelta(minutes=30)
    # A pace that is not a share of time is refused before anything is deleted
    for pace in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="pace must be above 0 and at most 1"):
            tasker.prune_tasks(cutoff, pace=pace)
        with pytest.raises(ValueError, match="pace must be above 0 and at most 1"):
            tasker.prune_events(timedelta(0), pace=pace, force=True)
    assert len(tasker.list_tasks()) == 4
    assert tasker.prune_tasks(cutoff, batch_size=2, pace=0.5) == 3
    assert [t["id"] for t in tasker.list_tasks()] == [open_id]
    assert {e["task_id"] for e in tasker.events(limit=10_000)} == {open_id}
    tasker.clock.advance(86400 * 31)
    assert tasker.prune_events(timedelta(days=30), batch_size=1).deleted >= 2
    assert tasker.events() == []


def run_pipeline(tasker: Tasker) -> list[dict[str, Any]]:
    """One task of ``pipeline`` run to the end; returns the whole event log."""
    task_id, _ = tasker.create_task(TaskRequest("pipeline"))
    assert run_until_final(tasker, task_id) == "complete"
    return tasker.events(limit=10_000)


def test_pruning_keeps_the_events_a_durable_consumer_has_not_read(tasker: Tasker) -> None:
    # Given a durable consumer that handled the first half of the log, then stopped cleanly
    events = run_pipeline(tasker)
    read, unread = events[: len(events) // 2], events[len(events) // 2 :]
    audit = EventConsumer(tasker, "audit")
    assert audit.poll(limit=len(read)) == read
    audit.commit(read[-1]["id"])
    audit.release()
    # When, a day later, every event is pruned
    assert isinstance(tasker.clock, FakeClock)
    tasker.clock.advance(86400)
    pruned = tasker.prune_events(timedelta(0), batch_size=3)
    # Then only what it read is deleted; the rest is kept for it, and said so
    assert (pruned.deleted, pruned.kept, pruned.consumer) == (len(read), len(unread), "audit")
    assert tasker.events(limit=10_000) == unread
    # And when it comes back it resumes where it left off, missing nothing
    assert EventConsumer(tasker, "audit").poll(limit=10_000) == unread
    # And forced, pruning deletes those too
    forced = tasker.prune_events(timedelta(0), force=True)
    assert (forced.deleted, forced.kept, forced.consumer) == (len(unread), 0, None)
    assert tasker.events() == []


def test_a_consumer_not_seen_for_a_week_no_longer_holds_events_back(tasker: Tasker) -> None:
    # Given a consumer that took its lease and vanished without reading anything (kill -9)
    events = run_pipeline(tasker)
    EventConsumer(tasker, "vanished").poll(limit=1)
    assert isinstance(tasker.clock, FakeClock)
    # When six days have passed, Then it still holds every event back
    tasker.clock.advance(86400 * 6)
    held = tasker.prune_events(timedelta(0))
    assert (held.deleted, held.kept, held.consumer) == (0, len(events), "vanished")
    # When it has not been seen for more than seven days, Then it is abandoned
    tasker.clock.advance(86400 + 1)
    pruned = tasker.prune_events(timedelta(0))
    assert (pruned.deleted, pruned.kept, pruned.consumer) == (len(events), 0, None)


def test_events_doc_is_generated_from_the_catalog() -> None:
    doc = Path(__file__).parents[2] / "docs" / "events.md"
    assert doc.read_text() == render_markdown()


@pytest.mark.postgres
def test_a_late_commit_is_never_overtaken_by_a_later_one(postgres_url: str) -> None:
    from tasker.store.queries import load_queries

    insert = load_queries("postgres")["insert_events"]

    def write_event(conn: psycopg.Connection[Any], name: str) -> None:
        conn.execute(
            insert,
            {
                "rows": psycopg.types.json.Jsonb([{"seq": 0, "name": name}]),
                "count": 1,
                "now": "2026-01-01T00:00:00Z",
            },
        )

    # Given transaction A that wrote an event but has not committed yet
    slow = psycopg.connect(postgres_url)
    write_event(slow, "x.slow")
    # and transaction B that writes a later event meanwhile
    fast = psycopg.connect(postgres_url)
    b_done = threading.Event()

    def writer_b() -> None:
        write_event(fast, "x.fast")
        fast.commit()
        b_done.set()

    thread = threading.Thread(target=writer_b)
    thread.start()
    db = open_database(postgres_url)
    consumer = EventConsumer(Tasker(db), "auditor")
    # When the consumer reads before A commits, B has not overtaken A: nothing is visible
    assert not b_done.wait(0.3)
    assert consumer.poll() == []
    slow.commit()
    thread.join(5)
    # Then both arrive, A's first, and ids follow commit order
    events = consumer.poll()
    assert [e["name"] for e in events] == ["x.slow", "x.fast"]
    assert events[0]["id"] < events[1]["id"]
    slow.close()
    fast.close()
    db.close()
