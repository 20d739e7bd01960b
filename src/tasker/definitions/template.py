"""The validated, immutable form of a task template and the rules it must satisfy."""

from __future__ import annotations

import copy
import heapq
import json
import math
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol

from tasker.definitions.flow import RateLimit, TaskConcurrency
from tasker.definitions.handler_paths import import_handler, split_handler_path
from tasker.definitions.schedule import CATCHUP_MODES, ScheduleSpec, cron_problem
from tasker.exceptions import TemplateError, ValidationError
from tasker.retry import Backoff

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
VERSION_PATTERN = re.compile(r"^\d+(\.\d+)*$")
DEFAULT_BACKOFF = Backoff()  # frozen, so one shared instance is safe as a default
JOIN_MODES = ("all", "any")
# Priorities are stored in a 32-bit integer column on both backends.
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class ChildWorkflow:
    """The template a step runs as a child task (``workflow:``); version None: the highest
    registered when the task is created."""

    namespace: str
    name: str
    version: str | None = None

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}" + (f"@{self.version}" if self.version else "")

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "version": self.version}

    def matches(self, template: TemplateDefinition) -> bool:
        """Whether this reference names ``template`` (any version of it when unversioned)."""
        return (
            self.namespace == template.namespace
            and self.name == template.name
            and self.version in (None, template.version)
        )


@dataclass(frozen=True)
class StepSpec:
    """One step of a template. Defaults are the built-in ones; YAML ``defaults`` override them."""

    name: str
    handler: str | None  # "module:callable"; None only for a step that waits for a signal
    depends_on: tuple[str, ...] = ()
    max_attempts: int = 3  # total executions allowed, the first one included
    retryable: bool = True
    timeout_seconds: float | None = 300.0  # per attempt; None = no timeout
    backoff: Backoff = DEFAULT_BACKOFF
    config: dict[str, Any] = field(default_factory=dict)  # handed to the handler
    description: str | None = None
    join: str = "all"  # "all" or "any" (JOIN_MODES)
    branches: tuple[str, ...] = ()  # direct children it chooses among with tasker.Branch
    # The signal it waits for once its parents are done; timeout_seconds is then also how
    # long it waits (template defaults do not apply to it).
    wait_for: str | None = None
    # PARENT.KEY[.KEY...]: a list in a parent's results; one instance of the step runs
    # per item, at most max_items of them.
    map: str | None = None
    max_items: int = 10_000
    # The template this step runs as a child task; the step completes with the child's
    # results. Its handler, when it has one, returns the child's context.
    workflow: ChildWorkflow | None = None
    # Flow control: at most concurrency_limit claims of it at once; at most rate_limit.count
    # claims per period (tasker.definitions.flow).
    concurrency_limit: int | None = None
    rate_limit: RateLimit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "handler": self.handler,
            "depends_on": list(self.depends_on),
            "description": self.description,
            "config": copy.deepcopy(self.config),
            "max_attempts": self.max_attempts,
            "retryable": self.retryable,
            "timeout_seconds": self.timeout_seconds,
            "backoff": asdict(self.backoff),
            "join": self.join,
            "branches": list(self.branches),
            "wait_for": self.wait_for,
            "map": self.map,
            "max_items": self.max_items,
            "workflow": self.workflow.to_dict() if self.workflow else None,
            "concurrency": None
            if self.concurrency_limit is None
            else {"limit": self.concurrency_limit},
            "rate_limit": None if self.rate_limit is None else str(self.rate_limit),
        }


@dataclass(frozen=True)
class TemplateDefinition:
    """A DAG of steps, keyed ``namespace/name@version``. Build it with the loader or builder."""

    namespace: str
    name: str
    version: str
    steps: tuple[StepSpec, ...]  # declaration order
    description: str | None = None
    context_schema: dict[str, Any] | None = None
    priority: int = 0  # claims take higher first; a task request may override it
    schedules: tuple[ScheduleSpec, ...] = ()  # cron schedules that create its tasks
    # At most concurrency.limit tasks per value of context[concurrency.key] run at once.
    concurrency: TaskConcurrency | None = None
    source: str | None = field(default=None, compare=False)  # file path or "python:module"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}@{self.version}"

    def version_tuple(self) -> tuple[int, ...]:
        if not isinstance(self.version, str) or not VERSION_PATTERN.match(self.version):
            raise TemplateError(
                f"version {self.version!r} is not a dotted numeric version such as 1.0.0",
                source=self.source,
            )
        return tuple(int(part) for part in self.version.split("."))

    def step(self, name: str) -> StepSpec:
        for spec in self.steps:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.steps)
        raise TemplateError(f"template {self.key} has no step {name!r}; steps: {known}")

    def topological_order(self) -> list[str]:
        """Step names, parents first (Kahn's algorithm; ties go to the earlier-declared step)."""
        position = {spec.name: index for index, spec in enumerate(self.steps)}
        waiting_on = {spec.name: len(set(spec.depends_on)) for spec in self.steps}
        children: dict[str, list[str]] = {spec.name: [] for spec in self.steps}
        for spec in self.steps:
            for parent in set(spec.depends_on):
                children[parent].append(spec.name)
        ready = [position[name] for name, count in waiting_on.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = self.steps[heapq.heappop(ready)].name
            order.append(name)
            for child in children[name]:
                waiting_on[child] -= 1
                if waiting_on[child] == 0:
                    heapq.heappush(ready, position[child])
        if len(order) != len(self.steps):
            raise TemplateError(_describe_cycle(self.steps), source=self.source)
        return order

    def dependency_levels(self) -> dict[str, int]:
        """Each step's level: 0 for roots, else the length of the longest path from a root."""
        levels: dict[str, int] = {}
        for name in self.topological_order():
            parents = self.step(name).depends_on
            levels[name] = 1 + max(levels[parent] for parent in parents) if parents else 0
        return {spec.name: levels[spec.name] for spec in self.steps}

    def validate_context(self, context: Any) -> None:
        """Raise ValidationError listing every way ``context`` breaks the ``context_schema``."""
        if not isinstance(context, dict):
            raise ValidationError(
                "the task context must be a JSON object",
                errors=[f"$: expected an object, got {type(context).__name__}"],
            )
        if self.context_schema is None:
            return
        errors = sorted(
            (error.json_path, error.message)
            for error in self._context_validator.iter_errors(context)
        )
        if errors:
            raise ValidationError(
                "context does not match the template's context_schema",
                errors=[f"{path}: {message}" for path, message in errors],
            )

    @cached_property
    def _context_validator(self) -> Any:
        """The ``context_schema``'s validator, built once per template: building it costs
        as much as a check, and a batch checks thousands of contexts of one template."""
        from jsonschema import Draft202012Validator  # only here: slow to import (~60 ms)

        return Draft202012Validator(self.context_schema or {})

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-serialisable form: the YAML shape, every step default explicit."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "context_schema": copy.deepcopy(self.context_schema),
            "priority": self.priority,
            "schedules": [schedule.to_dict() for schedule in self.schedules],
            "concurrency": self.concurrency.to_dict() if self.concurrency else None,
            "steps": [spec.to_dict() for spec in self.steps],
        }


def check_priority(value: Any, where: str = "priority") -> int:
    """``value`` as a priority: an integer (not a bool) that fits the stored column; else
    ValueError saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"{where} must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {value}")
    return value


def validate_template(
    t: TemplateDefinition,
    *,
    check_handlers: bool = True,
    known_handlers: Collection[str] = (),
) -> None:
    """Raise TemplateError (naming source, step and problem) unless ``t`` is runnable.

    ``known_handlers`` are handler paths registered in-process; they are not imported.
    """
    source = t.source

    def fail(problem: str, step: str | None = None) -> TemplateError:
        return TemplateError(problem, source=source, step=step)

    for label, value in (("namespace", t.namespace), ("template name", t.name)):
        _check_name(value, label, fail)
    t.version_tuple()
    if not t.steps:
        raise fail(f"template {t.namespace}/{t.name} has no steps")
    if t.context_schema is not None:
        # Imported only for a template with a schema: it costs ~60 ms of CLI start-up.
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if not isinstance(t.context_schema, dict):
            raise fail("context_schema must be a mapping (a JSON Schema object)")
        try:
            Draft202012Validator.check_schema(t.context_schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path) or "(root)"
            raise fail(
                f"context_schema is not a valid JSON Schema at {where}: {exc.message}"
            ) from None
    names: set[str] = set()
    for spec in t.steps:
        _check_name(spec.name, "step name", fail, step=spec.name)
        if spec.name in names:
            raise fail("duplicate step name", step=spec.name)
        names.add(spec.name)
    children: dict[str, list[str]] = {name: [] for name in names}
    for spec in t.steps:
        for parent in spec.depends_on:
            children.setdefault(parent, []).append(spec.name)
    signals: dict[str, str] = {}
    for spec in t.steps:
        _validate_step(spec, names, fail)
        _validate_dynamic(spec, children.get(spec.name, []), signals, fail)
        _validate_workflow(spec, t, fail)
        if spec.handler is None:
            continue  # waits for a signal (its payload is its result) or runs a child task
        if check_handlers and spec.handler not in known_handlers:
            try:
                import_handler(spec.handler)
            except TemplateError as exc:
                raise fail(exc.problem, step=spec.name) from exc.__cause__
        else:
            _check_handler_shape(spec, known_handlers, fail)
    t.topological_order()  # raises on a cycle, naming it
    _validate_schedules(t, fail)


def _validate_schedules(t: TemplateDefinition, fail: _Fail) -> None:
    seen: set[str] = set()
    for schedule in t.schedules:
        where = f"schedule {schedule.name!r}"
        if not isinstance(schedule.name, str) or not NAME_PATTERN.match(schedule.name):
            raise fail(f"schedule name {schedule.name!r} must match {NAME_PATTERN.pattern}")
        if schedule.name in seen:
            raise fail(f"duplicate {where}")
        seen.add(schedule.name)
        if schedule.catchup not in CATCHUP_MODES:
            raise fail(
                f"{where}: catchup must be one of {', '.join(CATCHUP_MODES)}, "
                f"got {schedule.catchup!r}"
            )
        problem = cron_problem(schedule.cron, schedule.timezone)
        if problem is not None:
            raise fail(f"{where}: {problem}")
        try:
            t.validate_context(schedule.context)
        except ValidationError as exc:
            details = "; ".join(exc.errors) if exc.errors else str(exc)
            raise fail(f"{where}: its context does not fit context_schema: {details}") from None


class _Fail(Protocol):
    def __call__(self, problem: str, step: str | None = None) -> TemplateError: ...


def _check_name(value: Any, label: str, fail: _Fail, step: str | None = None) -> None:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise fail(
            f"{label} {value!r} is invalid: use letters, digits, '_', '.' and '-', "
            "starting with a letter or '_'",
            step,
        )


def _check_handler_shape(spec: StepSpec, known: Collection[str], fail: _Fail) -> None:
    if spec.handler is None or spec.handler in known:
        return
    try:
        split_handler_path(spec.handler)
    except TemplateError as exc:
        raise fail(exc.problem, spec.name) from None


def _validate_step(spec: StepSpec, names: set[str], fail: _Fail) -> None:
    def problem(message: str) -> TemplateError:
        return fail(message, spec.name)

    for parent in spec.depends_on:
        if parent == spec.name:
            raise problem("depends on itself")
        if parent not in names:
            raise problem(f"depends on unknown step {parent!r}; steps: {', '.join(sorted(names))}")
    if len(set(spec.depends_on)) != len(spec.depends_on):
        raise problem(f"depends_on lists a step twice: {list(spec.depends_on)}")
    if isinstance(spec.max_attempts, bool) or not isinstance(spec.max_attempts, int):
        raise problem(f"max_attempts must be an integer, got {spec.max_attempts!r}")
    if spec.max_attempts < 1:
        raise problem(f"max_attempts must be at least 1, got {spec.max_attempts}")
    if spec.timeout_seconds is not None and not (
        _is_number(spec.timeout_seconds) and spec.timeout_seconds > 0
    ):
        raise problem(
            f"timeout_seconds must be a positive number or null, got {spec.timeout_seconds!r}"
        )
    backoff = spec.backoff
    for key in ("base_seconds", "max_seconds", "jitter"):
        value = getattr(backoff, key)
        if not _is_number(value) or value < 0:
            raise problem(f"backoff.{key} must be a non-negative number, got {value!r}")
    if backoff.jitter > 1:
        raise problem(f"backoff.jitter must be between 0 and 1, got {backoff.jitter}")
    if backoff.base_seconds > backoff.max_seconds:
        raise problem(
            f"backoff.base_seconds ({backoff.base_seconds}) is greater than "
            f"backoff.max_seconds ({backoff.max_seconds})"
        )
    if not isinstance(spec.config, dict):
        raise problem(f"config must be a mapping, got {type(spec.config).__name__}")
    try:
        json.dumps(spec.config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise problem(f"config is not JSON-serialisable: {exc}") from None
    if spec.handler is None:
        limits = (("concurrency", spec.concurrency_limit), ("rate_limit", spec.rate_limit))
        for key, value in limits:
            if value is not None:
                raise problem(f"{key} limits claims of a handler, and this step runs none")


def _validate_dynamic(
    spec: StepSpec, children: list[str], signals: dict[str, str], fail: _Fail
) -> None:
    """The Part 3 keys of one step: ``join``, ``branches``, ``wait_for``."""

    def problem(message: str) -> TemplateError:
        return fail(message, spec.name)

    if spec.join not in JOIN_MODES:
        raise problem(f"join must be one of {', '.join(JOIN_MODES)}, got {spec.join!r}")
    if spec.branches:
        if spec.handler is None:
            raise problem("a step with branches needs a handler that returns tasker.Branch")
        if len(set(spec.branches)) != len(spec.branches):
            raise problem(f"branches lists a step twice: {list(spec.branches)}")
        for branch in spec.branches:
            if branch not in children:
                known = ", ".join(children) if children else "none"
                raise problem(
                    f"branches names {branch!r}, which is not a direct child of "
                    f"{spec.name!r} (its children: {known})"
                )
    if spec.wait_for is not None:
        _check_name(spec.wait_for, "wait_for signal name", fail, spec.name)
        if spec.wait_for in signals:
            raise problem(
                f"wait_for {spec.wait_for!r} is also the signal of step "
                f"{signals[spec.wait_for]!r}; signal names must be unique in a template"
            )
        signals[spec.wait_for] = spec.name
    elif spec.handler is None and spec.workflow is None:
        raise problem(
            "missing required key 'handler' (only a step with wait_for or workflow may omit it)"
        )
    if isinstance(spec.max_items, bool) or not isinstance(spec.max_items, int):
        raise problem(f"max_items must be an integer, got {spec.max_items!r}")
    if spec.max_items < 1:
        raise problem(f"max_items must be at least 1, got {spec.max_items}")
    if spec.map is not None:
        if spec.wait_for is not None or spec.branches:
            raise problem("map cannot be combined with wait_for or branches")
        if map_parent(spec) is None:
            parents = ", ".join(spec.depends_on) if spec.depends_on else "none"
            raise problem(
                f"map {spec.map!r} must name a list in a parent's results as PARENT.KEY[.KEY...]"
                f" (its parents: {parents})"
            )


def _validate_workflow(spec: StepSpec, t: TemplateDefinition, fail: _Fail) -> None:
    """``workflow``: a well-formed reference, not combined with what a child cannot do, and
    not the template itself (it would start itself for ever). Whether the template exists,
    and cycles through other templates, are checked when a task is created."""
    child = spec.workflow
    if child is None:
        return

    def problem(message: str) -> TemplateError:
        return fail(message, spec.name)

    _check_name(child.namespace, "workflow namespace", fail, spec.name)
    _check_name(child.name, "workflow name", fail, spec.name)
    if child.version is not None and not VERSION_PATTERN.match(child.version):
        raise problem(
            f"workflow version {child.version!r} is not a dotted numeric version such as 1.0.0"
        )
    if spec.wait_for is not None or spec.branches:
        raise problem("workflow cannot be combined with wait_for or branches")
    if child.matches(t):
        raise problem(
            f"workflow {child.label} is this template itself: a child workflow cannot "
            "start its own template (it would recurse without end)"
        )


def map_parent(spec: StepSpec) -> tuple[str, tuple[str, ...]] | None:
    """``(parent, keys)`` of a step's ``map`` path, the longest parent name that starts it
    (step names may hold dots); None when no parent does, or no key follows it."""
    if spec.map is None:
        return None
    for parent in sorted(spec.depends_on, key=len, reverse=True):
        if spec.map.startswith(parent + "."):
            keys = tuple(spec.map[len(parent) + 1 :].split("."))
            if all(keys):
                return parent, keys
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe_cycle(steps: tuple[StepSpec, ...]) -> str:
    """``"dependency cycle: a -> b -> a"``; an arrow points from a step to one that depends on it.

    The cycle starts at its earliest-declared step, so the message is deterministic.
    """
    position = {spec.name: index for index, spec in enumerate(steps)}
    parents = {spec.name: [p for p in spec.depends_on if p in position] for spec in steps}
    done: set[str] = set()
    for start in (spec.name for spec in steps):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(parents[start]))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, remaining = stack[-1]
            parent = next(remaining, None)
            if parent is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif parent in on_path:
                # path runs child -> parent; the cycle reads parent-first
                cycle = list(reversed(path[path.index(parent) :]))
                first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
                cycle = cycle[first:] + cycle[:first]
                return "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
            elif parent not in done:
                stack.append((parent, iter(parents[parent])))
                path.append(parent)
                on_path.add(parent)
    return "dependency cycle"  # unreachable for a graph that Kahn's algorithm rejected
