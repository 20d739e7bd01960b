"""What a handler sees: ``StepContext``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tasker.exceptions import ValidationError

RESERVED_EVENT_NAMESPACES = ("task", "step", "workflow")
_EVENT_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


@dataclass
class StepContext:
    """The running step: read-only inputs, plus ``publish`` for custom events.

    ``context`` is the task context, ``results`` the parents' results by step name,
    ``config`` the step's template config, ``attempt`` counts from 1.
    """

    task_id: int
    step_id: int
    name: str
    attempt: int
    max_attempts: int
    context: Mapping[str, Any]
    results: Mapping[str, Any]
    config: Mapping[str, Any]
    namespace: str = "default"
    task_name: str = ""
    timeout_seconds: float | None = None  # this attempt's limit, for clients' own timeouts
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Read-only views, not copies: steps of one claim batch share their task's context.
        self.context = _read_only(self.context)
        self.results = _read_only(self.results)
        self.config = _read_only(self.config)

    def publish(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Publish a custom event (dotted name such as ``order.shipped``). It is stored with
        the step's result, so it exists only if this attempt completes."""
        if not _EVENT_NAME.match(name):
            raise ValidationError(
                f"event name {name!r} must be dotted lower-case words, e.g. 'order.shipped'"
            )
        if name.split(".", 1)[0] in RESERVED_EVENT_NAMESPACES:
            raise ValidationError(
                f"event name {name!r} uses a reserved namespace "
                f"({', '.join(RESERVED_EVENT_NAMESPACES)})"
            )
        self.published.append((name, dict(payload or {})))


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(mapping, MappingProxyType):
        return mapping
    return MappingProxyType(mapping if isinstance(mapping, dict) else dict(mapping))
