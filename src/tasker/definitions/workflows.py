"""Child workflows across templates: every template a task may start, found before it
starts, with a reference that names no template or a cycle of templates refused.

A template's own name in its ``workflow`` is refused when it is loaded
(``validate_template``); a cycle through other templates, or a reference to a template
that is not registered, can only be seen once the templates are known together: when
a registry has loaded them (:func:`check_known_workflows`) and when a task is created
(:func:`child_templates`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tasker.definitions.template import ChildWorkflow, TemplateDefinition
from tasker.exceptions import TaskerError, TemplateError, TemplateNotFound

Lookup = Callable[[ChildWorkflow], TemplateDefinition]
"""The template a reference names (the highest version when it gives none), or
TemplateNotFound."""


def child_templates(root: TemplateDefinition, lookup: Lookup) -> list[TemplateDefinition]:
    """Every template ``root``'s steps may start as child tasks, directly or further
    down, each once, in the order first reached. Raises TemplateError naming the source
    and step of a reference to an unknown template, or the cycle of templates."""
    found: dict[str, TemplateDefinition] = {}
    done: set[str] = set()

    def visit(template: TemplateDefinition, path: list[str]) -> None:
        for spec in template.steps:
            if spec.workflow is None:
                continue
            try:
                child = lookup(spec.workflow)
            except TemplateNotFound as exc:
                raise TemplateError(
                    f"workflow names an unknown template: {exc}",
                    source=template.source,
                    step=spec.name,
                ) from None
            if child.key in path or child.key == template.key:
                cycle = [*path[path.index(child.key) :], child.key] if child.key in path else []
                raise TemplateError(
                    "child workflows recurse without end: "
                    + " -> ".join(cycle or [template.key, child.key]),
                    source=template.source,
                    step=spec.name,
                )
            if child.key in done:
                continue
            found.setdefault(child.key, child)
            visit(child, [*path, child.key])
            done.add(child.key)

    visit(root, [root.key])
    return list(found.values())


def check_known_workflows(templates: Iterable[TemplateDefinition]) -> None:
    """At load: a ``workflow`` naming a namespace these templates define must name one
    of them (another namespace may be served elsewhere: checked at task creation), and
    no chain of them may lead back to where it started."""
    known = list(templates)
    namespaces = {t.namespace for t in known}

    def lookup(ref: ChildWorkflow) -> TemplateDefinition:
        candidates = [t for t in known if ref.matches(t)]
        if not candidates:
            if ref.namespace not in namespaces:
                raise _Elsewhere(ref.label)
            versions = sorted(
                (t for t in known if t.namespace == ref.namespace and t.name == ref.name),
                key=TemplateDefinition.version_tuple,
            )
            available = (
                f"; available versions: {', '.join(t.version for t in versions)}"
                if versions
                else ""
            )
            raise TemplateNotFound(f"no template {ref.label}{available}")
        return max(candidates, key=TemplateDefinition.version_tuple)

    for template in known:
        try:
            child_templates(template, lookup)
        except _Elsewhere:
            continue  # its chain leaves what was loaded: checked when a task is created


class _Elsewhere(TaskerError):
    """A reference to a namespace this process did not load."""
