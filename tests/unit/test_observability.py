"""Tracing spans (parentage across the stored trace context) and structured logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tasker import FakeClock, Tasker, TaskRequest, Template
from tasker.definitions import TemplateRegistry
from tasker.observability.logging import JsonFormatter, SecretMasker, TextFormatter
from tasker.runtime.runner import run_until_final
from tasker.store import open_database
from tasker.store.migrations import upgrade

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    yield _EXPORTER


def test_step_attempts_are_child_spans_of_the_task_span(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    tpl = Template("traced", defaults={"max_attempts": 2, "backoff": {"jitter": 0}})

    @tpl.step()
    def first(step: Any) -> dict[str, Any]:
        if step.attempt == 1:
            raise RuntimeError("first try fails")
        return {}

    @tpl.step(depends_on=[first])
    def second(step: Any) -> dict[str, Any]:
        return {}

    db = open_database(f"sqlite:///{tmp_path}/t.db")
    upgrade(db)
    registry = TemplateRegistry()
    registry.add(tpl)
    tasker = Tasker(db, registry, clock=FakeClock())
    spans.clear()
    task_id, _ = tasker.create_task(TaskRequest("traced"))
    assert run_until_final(tasker, task_id) == "complete"
    finished = spans.get_finished_spans()
    (task_span,) = [s for s in finished if s.name == "tasker.task default/traced"]
    steps = [s for s in finished if s.name.startswith("tasker.step")]
    assert [s.name for s in steps] == ["tasker.step first"] * 2 + ["tasker.step second"]
    for span in steps:
        assert span.context.trace_id == task_span.context.trace_id
        assert span.parent is not None and span.parent.span_id == task_span.context.span_id
        assert span.attributes is not None and span.attributes["tasker.task_id"] == task_id
    assert steps[0].status.status_code == StatusCode.ERROR
    assert "first try fails" in (steps[0].status.description or "")
    assert steps[0].attributes is not None and steps[0].attributes["tasker.attempt"] == 1
    assert steps[1].status.status_code != StatusCode.ERROR
    db.close()


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "tasker.worker", logging.INFO, __file__, 1, "step %s done", ("charge",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_logs_carry_task_step_attempt_worker_and_mask_secrets() -> None:
    formatter = JsonFormatter(SecretMasker())
    line = formatter.format(
        _record(
            task_id=7,
            step="charge",
            attempt=2,
            worker_id="w1",
            context={"card": {"token": "tok_123"}, "password": "x", "order": 5},
        )
    )
    body = json.loads(line)
    assert body["message"] == "step charge done"
    assert (body["task_id"], body["step"], body["attempt"], body["worker_id"]) == (
        7,
        "charge",
        2,
        "w1",
    )
    assert body["context"] == {"card": {"token": "***"}, "password": "***", "order": 5}


def test_text_logs_mask_secrets_with_custom_patterns() -> None:
    formatter = TextFormatter(SecretMasker(["api_key"]))
    text = formatter.format(_record(context={"api_key": "k", "password": "visible"}))
    assert "'api_key': '***'" in text and "'password': 'visible'" in text
