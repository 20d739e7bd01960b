"""The templates a process knows, by ``namespace/name@version``, and the handlers they name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tasker.definitions.builder import Template
from tasker.definitions.handlers import import_handler
from tasker.definitions.loader import collect_templates
from tasker.definitions.template import TemplateDefinition, validate_template
from tasker.exceptions import TemplateError, TemplateNotFound


class TemplateRegistry:
    """Templates by key, plus the handler functions registered in-process by builders."""

    def __init__(self) -> None:
        self._templates: dict[str, TemplateDefinition] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> TemplateRegistry:
        """A registry of every template in ``paths`` (see ``load_templates``)."""
        registry = cls()
        for template in collect_templates(paths):
            registry.add(template)
        return registry

    def add(self, template: TemplateDefinition | Template) -> TemplateDefinition:
        """Register a template (a builder is built first and its handlers remembered).

        The same key again is accepted only with an equal definition.
        """
        if isinstance(template, Template):
            handlers = template.handlers
            definition = template.build()
            for path, function in handlers.items():
                known = self._handlers.get(path)
                if known is not None and known is not function:
                    raise TemplateError(
                        f"handler path {path!r} is already registered for another function",
                        source=definition.source,
                    )
        else:
            handlers = {}
            definition = template
            validate_template(definition, known_handlers=self._handlers)
        existing = self._templates.get(definition.key)
        if existing is not None and existing != definition:
            raise TemplateError(
                f"template {definition.key} is already registered with a different definition"
                + (f" (from {existing.source})" if existing.source else ""),
                source=definition.source,
            )
        self._handlers.update(handlers)
        if existing is None:
            self._templates[definition.key] = definition
        return self._templates[definition.key]

    def get(
        self, name: str, namespace: str = "default", version: str | None = None
    ) -> TemplateDefinition:
        """The template ``namespace/name@version``; without a version, the highest one."""
        candidates = [
            t for t in self._templates.values() if t.namespace == namespace and t.name == name
        ]
        if not candidates:
            raise TemplateNotFound(f"no template {namespace}/{name}")
        if version is None:
            return max(candidates, key=TemplateDefinition.version_tuple)
        for template in candidates:
            if template.version == version:
                return template
        available = ", ".join(
            t.version for t in sorted(candidates, key=TemplateDefinition.version_tuple)
        )
        raise TemplateNotFound(
            f"no template {namespace}/{name}@{version}; available versions: {available}"
        )

    def all(self) -> list[TemplateDefinition]:
        """Every template, sorted by namespace, name and version."""
        return sorted(
            self._templates.values(), key=lambda t: (t.namespace, t.name, t.version_tuple())
        )

    def resolve_handler(self, path: str) -> Callable[..., Any]:
        """The function a handler path names: registered in-process first, else imported."""
        function = self._handlers.get(path)
        if function is None:
            function = import_handler(path)
        return function

    def __len__(self) -> int:
        return len(self._templates)

    def __contains__(self, key: object) -> bool:
        return key in self._templates
