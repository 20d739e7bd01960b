"""Finding templates: YAML files (one or several ``---`` documents), directories of them,
and Python modules defining ``Template`` builders or ``TemplateDefinition`` objects.
Parsing the YAML shape is ``tasker.definitions.parse``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from tasker.definitions.builder import Template
from tasker.definitions.parse import parse_template
from tasker.definitions.template import TemplateDefinition
from tasker.exceptions import TemplateError

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
    # PyYAML is imported only to read a file: commands that never do start faster.
    from tasker.definitions.strict_yaml import yaml_documents

    documents = yaml_documents(text, source=source)
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
