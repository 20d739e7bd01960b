"""Templates declared in Python; ``build()`` gives what the equivalent YAML file loads to.

::

    orders = Template("process_order", namespace="payments", version="1.0.0")

    @orders.step()
    def validate(step: StepContext) -> dict[str, Any]: ...

    @orders.step(depends_on=[validate], max_attempts=5, config={"gateway": "stripe"})
    def charge(step: StepContext) -> dict[str, Any]: ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from tasker.definitions.handler_paths import handler_path_of
from tasker.definitions.parse import STEP_KEYS, parse_template
from tasker.definitions.template import ChildWorkflow, TemplateDefinition
from tasker.exceptions import TemplateError
from tasker.retry import Backoff

F = TypeVar("F", bound=Callable[..., Any])

STEP_OPTIONS = tuple(key for key in STEP_KEYS if key not in ("name", "handler", "depends_on"))


class Template:
    """A template under construction. ``defaults`` takes the keys of the YAML ``defaults``."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "default",
        version: str = "0.1.0",
        description: str | None = None,
        context_schema: dict[str, Any] | None = None,
        defaults: dict[str, Any] | None = None,
        priority: int = 0,
        schedules: list[dict[str, Any]] | None = None,
        concurrency: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.version = version
        self.description = description
        self.context_schema = context_schema
        self.priority = priority
        self.schedules = [dict(s) for s in schedules] if schedules else None
        self.concurrency = dict(concurrency) if concurrency is not None else None
        self.defaults = _plain(defaults) if defaults else None
        # The declaring module, so errors and stored definitions say where a template came from.
        self.source = f"python:{sys._getframe(1).f_globals.get('__name__', '?')}"
        self._steps: list[dict[str, Any]] = []
        self._handlers: dict[str, Callable[..., Any]] = {}
        # id(function) -> (function, step name), for depends_on; holding the function keeps its id
        self._step_names: dict[int, tuple[Callable[..., Any], str]] = {}

    @property
    def handlers(self) -> dict[str, Callable[..., Any]]:
        """Handler path -> function, for every function given as a handler in-process."""
        return dict(self._handlers)

    def step(
        self,
        name: str | None = None,
        *,
        depends_on: Sequence[str | Callable[..., Any]] = (),
        handler: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Decorator: the function becomes a step (named after it unless ``name`` is given).

        ``options`` are the YAML step keys: max_attempts, retryable, timeout_seconds,
        backoff, config, description, join, branches, wait_for, map, max_items, workflow
        (a mapping or a ``ChildWorkflow``), concurrency (``{"limit": N}``), rate_limit
        (``"N/minute"``). The function is returned unchanged.
        """

        def register(function: F) -> F:
            step_name = name or function.__name__
            self.add_step(step_name, handler or function, depends_on=depends_on, **options)
            self._step_names[id(function)] = (function, step_name)
            return function

        return register

    def add_step(
        self,
        name: str,
        handler: str | Callable[..., Any] | None,
        *,
        depends_on: Sequence[str | Callable[..., Any]] = (),
        **options: Any,
    ) -> None:
        """Add a step; ``handler`` is a ``"module:callable"`` path or the function itself
        (None for a step with ``wait_for`` whose signal payload is its result, or with
        ``workflow`` whose child task gets the default context)."""
        unknown = sorted(set(options) - set(STEP_OPTIONS))
        if unknown:
            raise TemplateError(
                f"unknown option {unknown[0]!r}; allowed options: {', '.join(STEP_OPTIONS)}",
                source=self.source,
                step=name,
            )
        if isinstance(depends_on, str):
            depends_on = [depends_on]  # a lone name, not a sequence of one-letter names
        if callable(handler):
            path = handler_path_of(handler)
            known = self._handlers.setdefault(path, handler)
            if known is not handler:
                raise TemplateError(
                    f"handler path {path!r} already names another function", step=name
                )
            self._step_names.setdefault(id(handler), (handler, name))
            handler = path
        step: dict[str, Any] = {
            "name": name,
            "handler": handler,
            "depends_on": [self._parent_name(parent, name) for parent in depends_on],
        }
        step.update(_plain(options))
        self._steps.append(step)

    def build(self) -> TemplateDefinition:
        """The validated definition; handlers registered here count as importable."""
        data: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "context_schema": self.context_schema,
            "priority": self.priority,
            "steps": [dict(step) for step in self._steps],
        }
        if self.defaults:
            data["defaults"] = self.defaults
        if self.schedules:
            data["schedules"] = self.schedules
        if self.concurrency is not None:
            data["concurrency"] = self.concurrency
        return parse_template(data, source=self.source, known_handlers=self._handlers)

    def _parent_name(self, parent: str | Callable[..., Any], step: str) -> str:
        if isinstance(parent, str):
            return parent
        try:
            return self._step_names[id(parent)][1]
        except KeyError:
            raise TemplateError(
                f"depends_on names {getattr(parent, '__qualname__', parent)!r}, "
                "which is not a step of this template (declare it first)",
                source=self.source,
                step=step,
            ) from None

    def __repr__(self) -> str:
        return f"<Template {self.namespace}/{self.name}@{self.version}: {len(self._steps)} steps>"


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as YAML would give them: a Backoff or a ChildWorkflow becomes its mapping."""
    return {
        key: asdict(value) if isinstance(value, Backoff | ChildWorkflow) else value
        for key, value in options.items()
    }
