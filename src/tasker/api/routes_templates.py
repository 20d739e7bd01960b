"""``/v1/templates``: the templates this server can create tasks from, with their DAGs.

That is the server's own registry (``TASKER_TEMPLATES``) plus the definitions workers
stored in the database; the registry's copy wins when both hold one version.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tasker.api.deps import COMMON_ERRORS, Filter, TaskerDep, error_responses, group_levels
from tasker.api.schemas import NO_NUL, TemplateDetail, TemplateSummary
from tasker.api.security import Reader
from tasker.definitions import TemplateDefinition, parse_template
from tasker.exceptions import TemplateError
from tasker.facade import Tasker

logger = logging.getLogger("tasker.api")

router = APIRouter(prefix="/v1/templates", tags=["templates"], responses=COMMON_ERRORS)

PathName = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]


def known_templates(tasker: Tasker) -> list[TemplateDefinition]:
    """Registry templates and stored ones, sorted by namespace, name, version."""
    found = {t.key: t for t in tasker.registry.all()}
    for row in tasker.stored_templates():
        key = f"{row['namespace']}/{row['name']}@{row['version']}"
        if key in found:
            continue
        try:
            # Its handlers may live only in the workers' processes: not imported here.
            found[key] = parse_template(row["definition"], source="database", check_handlers=False)
        except TemplateError as exc:  # an old or foreign row must not hide the others
            logger.warning("skipping stored template %s: %s", key, exc)
    return sorted(found.values(), key=lambda t: (t.namespace, t.name, t.version_tuple()))


@router.get(
    "",
    response_model=list[TemplateSummary],
    summary="Registered templates",
    operation_id="listTemplates",
)
def list_templates(tasker: TaskerDep, who: Reader, namespace: Filter = None) -> Any:
    return [
        {
            "namespace": t.namespace,
            "name": t.name,
            "version": t.version,
            "description": t.description,
            "steps": len(t.steps),
        }
        for t in known_templates(tasker)
        if namespace is None or t.namespace == namespace
    ]


@router.get(
    "/{namespace}/{name}",
    response_model=TemplateDetail,
    summary="A template with its DAG (the highest version unless `version` is given)",
    responses=error_responses(404),
    operation_id="getTemplate",
)
def get_template(
    namespace: PathName,
    name: PathName,
    tasker: TaskerDep,
    who: Reader,
    version: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL)] = None,
) -> Any:
    template = tasker.template(name, namespace, version)
    versions = [
        t.version for t in known_templates(tasker) if t.namespace == namespace and t.name == name
    ]
    return template_detail(template, versions or [template.version])


def template_detail(template: TemplateDefinition, versions: list[str]) -> dict[str, Any]:
    body = template.to_dict()
    levels = template.dependency_levels()
    for step in body["steps"]:
        step["level"] = levels[step["name"]]
    body["versions"] = versions
    body["dag"] = {
        "edges": [
            {"from": parent, "to": spec.name}
            for spec in template.steps
            for parent in spec.depends_on
        ],
        "levels": group_levels(levels.items()),
        "topological_order": template.topological_order(),
    }
    return body
