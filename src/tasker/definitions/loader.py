"""Templates from YAML files, directories and Python modules, parsed into TemplateDefinition.

YAML shape (see DESIGN.md, "Task templates"): top-level ``namespace``, ``name``, ``version``,
``description``, ``context_schema``, ``defaults``, ``steps``. Quote the version: YAML reads
``version: 1.10`` as the float 1.1. Unquoted numbers are accepted and turned into strings.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from tasker.definitions.template import StepSpec, TemplateDefinition, validate_template
from tasker.exceptions import TemplateError
from tasker.retry import Backoff

if TYPE_CHECKING:
    from tasker.definitions.builder import Template

TOP_LEVEL_KEYS = (
    "namespace", "name", "version", "description", "context_schema", "defaults", "steps",
)  # fmt: skip
DEFAULTS_KEYS = ("max_attempts", "retryable", "timeout_seconds", "backoff")
STEP_KEYS = ("name", "handler", "depends_on", "description", "config", *DEFAULTS_KEYS)
BACKOFF_KEYS = ("base_seconds", "max_seconds", "jitter")
YAML_SUFFIXES = (".yaml", ".yml")


def load_template_file(
    path: str | Path, *, check_handlers: bool = True
) -> list[TemplateDefinition]:
    """Every template in a YAML file: one mapping, or several ``---``-separated documents."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read the file: {exc}", source=source) from exc
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise TemplateError(f"{where}could not parse YAML: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"could not parse YAML: {exc}", source=source) from None
    if not documents:
        raise TemplateError("the file holds no template", source=source)
    return [parse_template(doc, source=source, check_handlers=check_handlers) for doc in documents]


def load_templates(
    paths: Iterable[str], *, check_handlers: bool = True
) -> list[TemplateDefinition]:
    """Templates from directories (``*.yaml``/``*.yml``, recursive, sorted), files and modules."""
    found: list[TemplateDefinition] = []
    for item in collect_templates(paths, check_handlers=check_handlers):
        if isinstance(item, TemplateDefinition):
            found.append(item)
        else:
            found.append(item.build())
    return found


def collect_templates(
    paths: Iterable[str], *, check_handlers: bool = True
) -> list[TemplateDefinition | Template]:
    """Like ``load_templates`` but builders found in modules are returned unbuilt."""
    found: list[TemplateDefinition | Template] = []
    for entry in paths:
        if not entry:
            continue
        path = Path(entry)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            for file in files:
                found.extend(load_template_file(file, check_handlers=check_handlers))
        elif path.exists():
            found.extend(load_template_file(path, check_handlers=check_handlers))
        elif _looks_like_module(entry):
            found.extend(_templates_in_module(entry))
        else:
            raise TemplateError(f"template path {entry!r} does not exist")
    return found


def _looks_like_module(entry: str) -> bool:
    return os.sep not in entry and "/" not in entry and not entry.lower().endswith(YAML_SUFFIXES)


def _templates_in_module(module_name: str) -> list[TemplateDefinition | Template]:
    from tasker.definitions.builder import Template  # the builder itself uses this module

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            raise TemplateError(
                f"{module_name!r} is neither an existing path nor an importable module"
            ) from None
        raise TemplateError(f"cannot import module {module_name!r}: {exc}") from exc
    except Exception as exc:  # importing runs arbitrary code: report whatever it raised
        raise TemplateError(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    source = f"python:{module_name}"
    found: list[TemplateDefinition | Template] = []
    seen: set[int] = set()
    for value in vars(module).values():
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Template):
            found.append(value)
        elif isinstance(value, TemplateDefinition):
            found.append(value if value.source else replace(value, source=source))
    if not found:
        raise TemplateError("the module defines no Template or TemplateDefinition", source=source)
    return found


def parse_template(
    data: Any,
    *,
    source: str | None = None,
    check_handlers: bool = True,
    known_handlers: Collection[str] = (),
) -> TemplateDefinition:
    """Check the shape of one YAML document (keys and types), apply defaults, validate."""

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
        source=source,
    )
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
    if "handler" not in raw:
        raise fail("missing required key 'handler'", name)
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
            handler=_text(raw["handler"], "handler", fail, name),
            depends_on=tuple(depends_on),
            config=dict(config),
            description=_optional_text(raw.get("description"), "description", fail, name),
        ),
        "step",
        fail,
        name,
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


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if not isinstance(key, str):
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
