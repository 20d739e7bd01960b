"""OpenTelemetry: a span per task, a child span per step attempt, one trace per task.

Only the OpenTelemetry API is a dependency; without an SDK configured these spans cost
next to nothing. The task span's context is stored on the task (W3C ``traceparent``),
so step spans opened by any worker on any machine join the task's trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Status, StatusCode

TRACER_NAME = "tasker"


def start_task_trace(namespace: str, name: str, version: str) -> dict[str, str] | None:
    """Open and close the task's span (it marks creation, as a child of any current span)
    and return its context to store on the task; None when tracing is off."""
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"tasker.task {namespace}/{name}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "tasker.namespace": namespace,
            "tasker.task_name": name,
            "tasker.version": version,
        },
    ) as span:
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier


_provider_checked_at = -1.0
_provider_is_set = False


def tracing_enabled() -> bool:
    """Whether an SDK tracer provider is installed; without one spans are no-ops and step
    spans are skipped (they cost a measurable share of a fast worker's CPU).

    A provider installed with ``trace.set_tracer_provider`` is seen at once. One named by
    the ``OTEL_PYTHON_TRACER_PROVIDER`` variable is looked up at most once a second,
    because that lookup reads the environment."""
    global _provider_checked_at, _provider_is_set
    if getattr(trace, "_TRACER_PROVIDER", None) is not None:
        return True
    now = time.monotonic()
    if now - _provider_checked_at > 1.0:
        provider = trace.get_tracer_provider()
        _provider_is_set = not isinstance(provider, trace.ProxyTracerProvider)
        _provider_checked_at = now
    return _provider_is_set


@contextmanager
def step_span(trace_context: dict[str, str] | None, attributes: dict[str, Any]) -> Iterator[Span]:
    """A span for one step attempt, child of the task's span when its context is known."""
    if not tracing_enabled():
        yield trace.INVALID_SPAN
        return
    tracer = trace.get_tracer(TRACER_NAME)
    parent = propagate.extract(trace_context) if trace_context else otel_context.Context()
    name = f"tasker.step {attributes.get('tasker.step', '')}"
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def mark_failed(span: Span, error_class: str, message: str) -> None:
    span.set_status(Status(StatusCode.ERROR, f"{error_class}: {message}"))
    span.set_attribute("tasker.error_class", error_class)


def configure_from_env(service_name: str = "tasker") -> bool:
    """Export spans over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the
    ``otel`` extra (SDK and exporter) is installed; returns whether it did. The CLI calls
    this for ``worker``, ``run`` and ``serve``; applications may set up their own SDK."""
    import os

    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
