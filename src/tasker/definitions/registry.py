"""The templates a process knows, by ``namespace/name@version``, and the handlers they name."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from tasker.definitions.builder import Template
from tasker.definitions.handler_paths import import_handler
from tasker.definitions.loader import collect_templates
from tasker.definitions.template import TemplateDefinition, validate_template
from tasker.definitions.workflows import check_known_workflows
from tasker.exceptions import TemplateError, TemplateNotFound


class TemplateRegistry:
    """Templates by key, plus the handler functions registered in-process by builders."""

    def __init__(self) -> None:
        self._templates: dict[str, TemplateDefinition] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._imported: dict[str, Callable[..., Any]] = {}  # resolved by import, by path

    @classmethod
    def from_paths(cls, paths: Iterable[str], *, check_handlers: bool = True) -> TemplateRegistry:
        """A registry of every template in ``paths`` (see ``load_templates``).

        ``check_handlers=False`` checks only the shape of handler paths, without importing
        them: a worker loads its templates so, then serves the handlers that do import
        (``load_handlers``) instead of refusing to start.
        """
        registry = cls()
        for template in collect_templates(paths, check_handlers=check_handlers):
            registry.add(template, check_handlers=check_handlers)
        check_known_workflows(registry.all())
        return registry

    def add(
        self, template: TemplateDefinition | Template, *, check_handlers: bool = True
    ) -> TemplateDefinition:
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
            validate_template(
                definition, check_handlers=check_handlers, known_handlers=self._handlers
            )
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
        """The function a handler path names: registered in-process first, else imported
        (once: a worker resolves the handler of every step it runs)."""
        function = self._handlers.get(path) or self._imported.get(path)
        if function is None:
            function = self._imported[path] = import_handler(path)
        return function

    def load_handlers(self, namespaces: Collection[str] | None = None) -> HandlerCoverage:
        """Resolve the handler of every step of every template (of ``namespaces``, when
        given): what this process can run, and why it cannot run the rest."""
        loaded: set[str] = set()
        errors: dict[str, str] = {}
        served: list[str] = []
        partly: dict[str, tuple[str, ...]] = {}
        unserved: list[str] = []
        for template in self.all():
            if namespaces and template.namespace not in namespaces:
                continue
            missing = []
            for spec in template.steps:
                if spec.handler is None:
                    continue  # a step that waits for a signal runs no code
                if spec.handler not in loaded and spec.handler not in errors:
                    try:
                        self.resolve_handler(spec.handler)
                        loaded.add(spec.handler)
                    except TemplateError as exc:
                        errors[spec.handler] = exc.problem
                if spec.handler in errors:
                    missing.append(spec.name)
            if len(missing) == len(template.steps):
                unserved.append(template.key)
            elif missing:
                partly[template.key] = tuple(missing)
            else:
                served.append(template.key)
        return HandlerCoverage(
            tuple(sorted(loaded)), tuple(served), partly, tuple(unserved), errors
        )

    def __len__(self) -> int:
        return len(self._templates)

    def __contains__(self, key: object) -> bool:
        return key in self._templates


@dataclass(frozen=True)
class HandlerCoverage:
    """What one process can run (``TemplateRegistry.load_handlers``).

    handlers: the handler paths that resolved, sorted; a worker claims only their steps.
    templates: keys (``namespace/name@version``) of the templates all of whose handlers
        resolved.
    partly: keys of templates some of whose handlers resolved, with the names of their
        steps that cannot run here.
    unserved: keys of templates none of whose handlers resolved.
    errors: each handler path that did not resolve, with why (the import error).
    """

    handlers: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    partly: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unserved: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the start-up log: templates served, and handlers that did not load."""
        parts = [f"serves templates: {', '.join(self.templates) or 'none'}"]
        if self.partly:
            parts.append(
                "partly: "
                + ", ".join(
                    f"{key} (not steps {', '.join(steps)})" for key, steps in self.partly.items()
                )
            )
        if self.unserved:
            parts.append(f"does not serve: {', '.join(self.unserved)}")
        if self.errors:
            # each error names its handler: "handler 'shop:charge': module 'shop' does not..."
            parts.append("cannot load: " + "; ".join(self.errors.values()))
        return "; ".join(parts)
