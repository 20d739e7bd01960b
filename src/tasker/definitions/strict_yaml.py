"""Template files as YAML documents, read strictly: a key written twice in one mapping is
an error, not the last value silently kept. Its own module so that PyYAML is imported only
when a file is read (see ``loader.load_template_file``)."""

from __future__ import annotations

from typing import Any

import yaml

from tasker.exceptions import TemplateError


def yaml_documents(text: str, *, source: str) -> list[Any]:
    """The non-empty documents of ``text``; a TemplateError naming ``source`` and the
    line and column when it is not valid YAML."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise TemplateError(f"{where}could not parse YAML: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"could not parse YAML: {exc}", source=source) from None


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
