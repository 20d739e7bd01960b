"""What a handler sees: ``StepContext``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    ``config`` the step's template config, ``attempt`` counts from 1. ``signal`` is the
    payload of the signal a ``wait_for`` step waited for (None otherwise); ``item`` and
    ``index`` a map instance's item and its position in the list;
    ``ancestor(name)`` the results of any step upstream, not only a parent.
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
    signal: Any = None
    item: Any = None  # a map instance's item (``map``), and its index in the list
    index: int | None = None
    # Loads the results of an upstream step by name (KeyError when it is not upstream);
    # given by the worker, or a dict of every ancestor's results in a handler process.
    ancestors: Callable[[str], Any] | Mapping[str, Any] | None = field(default=None, repr=False)
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # Read-only views, not copies: steps of one claim batch share their task's context.
        self.context = _read_only(self.context)
        self.results = _read_only(self.results)
        self.config = _read_only(self.config)

    def ancestor(self, name: str) -> Any:
        """The results of step ``name`` upstream of this one (a parent, or a parent's
        ancestor), loaded on first use. ``KeyError`` when no such step is upstream."""
        if name in self.results:
            return self.results[name]
        if name not in self._loaded:
            if self.ancestors is None:
                raise KeyError(f"step {name!r} is not upstream of step {self.name!r}")
            if isinstance(self.ancestors, Mapping):
                if name not in self.ancestors:
                    raise KeyError(f"step {name!r} is not upstream of step {self.name!r}")
                self._loaded[name] = self.ancestors[name]
            else:
                self._loaded[name] = self.ancestors(name)
        return self._loaded[name]

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
