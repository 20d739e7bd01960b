"""The YAML shape of a template, parsed and validated into a ``TemplateDefinition``.

Top-level ``namespace``, ``name``, ``version``, ``description``, ``context_schema``,
``priority``, ``schedules``, ``concurrency``, ``defaults``, ``steps`` (docs/templates.md); a
step also takes ``join``, ``branches``, ``wait_for``, ``map``, ``max_items`` and ``workflow``
(dynamic workflows), ``concurrency`` and ``rate_limit`` (flow control).
Quote the version: YAML reads ``version: 1.10`` as the float 1.1. Unquoted numbers are
accepted and turned into strings. The same parser serves YAML files, the Python builder
and stored definitions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, replace
from typing import Any, Protocol

from tasker.definitions.flow import (
    RateLimit,
    TaskConcurrency,
    check_key_field,
    check_limit,
    parse_rate_limit,
)
from tasker.definitions.schedule import ScheduleSpec
from tasker.definitions.template import (
    ChildWorkflow,
    StepSpec,
    TemplateDefinition,
    check_priority,
    validate_template,
)
from tasker.exceptions import TemplateError
from tasker.retry import Backoff

TOP_LEVEL_KEYS = (
    "namespace", "name", "version", "description", "context_schema", "priority", "schedules",
    "concurrency", "defaults", "steps",
)  # fmt: skip
DEFAULTS_KEYS = ("max_attempts", "retryable", "timeout_seconds", "backoff")
STEP_KEYS = (
    "name", "handler", "depends_on", "description", "config", *DEFAULTS_KEYS,
    "join", "branches", "wait_for", "map", "max_items", "workflow", "concurrency", "rate_limit",
)  # fmt: skip
BACKOFF_KEYS = ("base_seconds", "max_seconds", "jitter")
WORKFLOW_KEYS = ("namespace", "name", "version")
SCHEDULE_KEYS = ("name", "cron", "timezone", "context", "catchup")
TEMPLATE_CONCURRENCY_KEYS = ("key", "limit")
STEP_CONCURRENCY_KEYS = ("limit",)


def parse_template(
    data: Any,
    *,
    source: str | None = None,
    check_handlers: bool = True,
    known_handlers: Collection[str] = (),
    validate: bool = True,
) -> TemplateDefinition:
    """Check the shape of one YAML document (keys and types), apply defaults, validate.
    ``validate=False`` skips the rules a stored definition passed when it was registered
    (an in-process handler's path, say, is not importable from another process)."""

    def fail(problem: str, step: str | None = None) -> TemplateError:
        return TemplateError(problem, source=source, step=step)

    if not isinstance(data, Mapping):
        raise fail(f"a template must be a mapping, got {_type_name(data)}")
    _check_keys(data, TOP_LEVEL_KEYS, "the template", fail)
    if "name" not in data:
        raise fail("missing required key 'name'")
    if "steps" not in data:
        raise fail("missing required key 'steps'")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise fail(f"defaults must be a mapping, got {_type_name(defaults)}")
    _check_keys(defaults, DEFAULTS_KEYS, "defaults", fail)
    base = _options(defaults, StepSpec(name="", handler=""), "defaults", fail, None)
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list):
        raise fail(f"steps must be a list, got {_type_name(raw_steps)}")
    steps = tuple(_parse_step(raw, index, base, fail) for index, raw in enumerate(raw_steps))
    schema = data.get("context_schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise fail(f"context_schema must be a mapping (a JSON Schema), got {_type_name(schema)}")
    template = TemplateDefinition(
        namespace=_text(data.get("namespace", "default"), "namespace", fail, None),
        name=_text(data["name"], "name", fail, None),
        version=_version(data.get("version", "0.1.0"), fail),
        steps=steps,
        description=_optional_text(data.get("description"), "description", fail, None),
        context_schema=dict(schema) if schema is not None else None,
        priority=_priority(data.get("priority", 0), fail),
        schedules=_schedules(data.get("schedules"), fail),
        concurrency=_task_concurrency(data.get("concurrency"), fail),
        source=source,
    )
    if validate:
        validate_template(template, check_handlers=check_handlers, known_handlers=known_handlers)
    return template


class _Fail(Protocol):  # the local ``fail`` of parse_template
    def __call__(self, problem: str, step: str | None = None) -> TemplateError: ...


def _parse_step(raw: Any, index: int, base: StepSpec, fail: _Fail) -> StepSpec:
    if not isinstance(raw, Mapping):
        raise fail(f"steps[{index}] must be a mapping, got {_type_name(raw)}")
    name = raw.get("name")
    if not isinstance(name, str):
        problem = "missing required key 'name'" if name is None else "name must be a string"
        raise fail(f"steps[{index}]: {problem}")
    _check_keys(raw, STEP_KEYS, "a step", fail, name)
    wait_for = _optional_text(raw.get("wait_for"), "wait_for", fail, name)
    workflow = _workflow(raw.get("workflow"), fail, name)
    if raw.get("handler") is None and wait_for is None and workflow is None:
        raise fail("missing required key 'handler'", name)
    if wait_for is not None:
        # timeout_seconds of a waiting step is how long it waits: the template's default
        # (meant for handlers) does not apply, so a wait lasts for ever unless it says so.
        base = replace(base, timeout_seconds=None)
    branches = raw.get("branches")
    if branches is None:
        branches = []
    if not isinstance(branches, list) or not all(isinstance(b, str) for b in branches):
        raise fail(f"branches must be a list of step names, got {branches!r}", name)
    depends_on = raw.get("depends_on")
    if depends_on is None:
        depends_on = []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise fail(f"depends_on must be a list of step names, got {depends_on!r}", name)
    config = raw.get("config")
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise fail(f"config must be a mapping, got {_type_name(config)}", name)
    return _options(
        raw,
        replace(
            base,
            name=name,
            handler=_optional_text(raw.get("handler"), "handler", fail, name),
            depends_on=tuple(depends_on),
            config=dict(config),
            description=_optional_text(raw.get("description"), "description", fail, name),
            join=_text(raw.get("join", "all"), "join", fail, name),
            branches=tuple(branches),
            wait_for=wait_for,
            map=_optional_text(raw.get("map"), "map", fail, name),
            max_items=raw.get("max_items", 10_000),
            workflow=workflow,
            concurrency_limit=_step_concurrency(raw.get("concurrency"), fail, name),
            rate_limit=_rate_limit(raw.get("rate_limit"), fail, name),
        ),
        "step",
        fail,
        name,
    )


def _workflow(raw: Any, fail: _Fail, step: str) -> ChildWorkflow | None:
    """``workflow: {namespace, name, version}``; namespace defaults to ``default`` and
    version to the highest registered one when a task is created."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail(
            f"workflow must be a mapping {{namespace, name, version}}, got {_type_name(raw)}", step
        )
    _check_keys(raw, WORKFLOW_KEYS, "workflow", fail, step)
    if raw.get("name") is None:
        raise fail("workflow: missing required key 'name'", step)
    version = raw.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = str(version)
    return ChildWorkflow(
        namespace=_text(raw.get("namespace", "default"), "workflow namespace", fail, step),
        name=_text(raw["name"], "workflow name", fail, step),
        version=_optional_text(version, "workflow version", fail, step),
    )


def _options(
    raw: Mapping[str, Any], spec: StepSpec, where: str, fail: _Fail, step: str | None
) -> StepSpec:
    """``spec`` with the retry options present in ``raw`` applied (backoff merges)."""
    changes: dict[str, Any] = {}
    if "max_attempts" in raw:
        value = raw["max_attempts"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"max_attempts must be an integer, got {value!r}", step)
        changes["max_attempts"] = value
    if "retryable" in raw:
        if not isinstance(raw["retryable"], bool):
            raise fail(f"retryable must be true or false, got {raw['retryable']!r}", step)
        changes["retryable"] = raw["retryable"]
    if "timeout_seconds" in raw:
        value = raw["timeout_seconds"]
        if value is not None:
            value = _number(value, "timeout_seconds", fail, step)
        changes["timeout_seconds"] = value
    if raw.get("backoff") is not None:
        backoff = raw["backoff"]
        if not isinstance(backoff, Mapping):
            raise fail(f"backoff must be a mapping, got {_type_name(backoff)}", step)
        _check_keys(backoff, BACKOFF_KEYS, f"{where} backoff", fail, step)
        merged = {
            key: _number(value, f"backoff.{key}", fail, step) for key, value in backoff.items()
        }
        changes["backoff"] = Backoff(**{**asdict(spec.backoff), **merged})
    return replace(spec, **changes)


def _check_keys(
    raw: Mapping[Any, Any],
    allowed: tuple[str, ...],
    where: str,
    fail: _Fail,
    step: str | None = None,
) -> None:
    for key in raw:
        if key not in allowed:
            raise fail(f"unknown key {key!r} in {where}; allowed keys: {', '.join(allowed)}", step)


def _number(value: Any, key: str, fail: _Fail, step: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{key} must be a number, got {value!r}", step)
    return float(value)


def _text(value: Any, key: str, fail: _Fail, step: str | None) -> str:
    if not isinstance(value, str):
        raise fail(f"{key} must be a string, got {value!r}", step)
    return value


def _optional_text(value: Any, key: str, fail: _Fail, step: str | None) -> str | None:
    return None if value is None else _text(value, key, fail, step)


def _version(value: Any, fail: _Fail) -> str:
    # YAML reads 1.0 as a float and 1 as an int; accept them (1.10 has already become 1.1)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise fail(f"version must be a string such as '1.0.0', got {value!r}")
    return value


def _schedules(raw: Any, fail: _Fail) -> tuple[ScheduleSpec, ...]:
    """The shape of ``schedules:`` (a list of mappings); the rules are validate_template's."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fail(f"schedules must be a list, got {_type_name(raw)}")
    found = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise fail(f"schedules[{index}] must be a mapping, got {_type_name(entry)}")
        _check_keys(entry, SCHEDULE_KEYS, f"schedules[{index}]", fail)
        for key in ("name", "cron"):
            if key not in entry:
                raise fail(f"schedules[{index}]: missing required key {key!r}")
        where = f"schedule {entry['name']!r}"
        context = entry.get("context") or {}
        if not isinstance(context, Mapping):
            raise fail(f"{where}: context must be a mapping, got {_type_name(context)}")
        found.append(
            ScheduleSpec(
                name=_text(entry["name"], "name", fail, None),
                cron=_text(entry["cron"], f"{where}: cron", fail, None),
                timezone=_text(entry.get("timezone", "UTC"), f"{where}: timezone", fail, None),
                context=dict(context),
                catchup=_text(entry.get("catchup", "latest"), f"{where}: catchup", fail, None),
            )
        )
    return tuple(found)


def _task_concurrency(raw: Any, fail: _Fail) -> TaskConcurrency | None:
    """``concurrency: {key: FIELD, limit: N}`` of a template."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail(f"concurrency must be a mapping {{key, limit}}, got {_type_name(raw)}")
    _check_keys(raw, TEMPLATE_CONCURRENCY_KEYS, "concurrency", fail)
    for key in TEMPLATE_CONCURRENCY_KEYS:
        if key not in raw:
            raise fail(
                f"concurrency: missing required key {key!r} (a template's concurrency is "
                "per value of a context field; a step's takes only limit)"
            )
    try:
        return TaskConcurrency(
            check_key_field(raw["key"]), check_limit(raw["limit"], "concurrency.limit")
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


def _step_concurrency(raw: Any, fail: _Fail, step: str) -> int | None:
    """``concurrency: {limit: N}`` of a step, as N."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise fail(f"concurrency must be a mapping {{limit: N}}, got {_type_name(raw)}", step)
    if "key" in raw:
        raise fail(
            "concurrency.key belongs on the template (at most N tasks per key value); "
            "a step's concurrency takes only limit",
            step,
        )
    _check_keys(raw, STEP_CONCURRENCY_KEYS, "concurrency", fail, step)
    if "limit" not in raw:
        raise fail("concurrency: missing required key 'limit'", step)
    try:
        return check_limit(raw["limit"], "concurrency.limit")
    except ValueError as exc:
        raise fail(str(exc), step) from None


def _rate_limit(raw: Any, fail: _Fail, step: str) -> RateLimit | None:
    if raw is None:
        return None
    try:
        return parse_rate_limit(raw)
    except ValueError as exc:
        raise fail(str(exc), step) from None


def _priority(value: Any, fail: _Fail) -> int:
    try:
        return check_priority(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)
