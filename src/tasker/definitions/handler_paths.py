"""Handler paths: ``"package.module:attribute.path"`` turned into the callable it names."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from tasker.exceptions import TemplateError

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_HANDLER_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")


def split_handler_path(path: str) -> tuple[str, list[str]]:
    """``"shop.handlers:Charge.run"`` -> ``("shop.handlers", ["Charge", "run"])``.

    Raises TemplateError when the path is not ``module:attribute`` made of identifiers.
    """
    if not isinstance(path, str) or not _HANDLER_PATH.match(path):
        raise TemplateError(
            f"handler {path!r} is malformed: expected 'package.module:callable' "
            "(a dotted module, a colon, a dotted attribute path)"
        )
    module_name, _, attributes = path.partition(":")
    return module_name, attributes.split(".")


def import_handler(path: str) -> Callable[..., Any]:
    """Import the module of ``path``, walk its attribute path and return the callable.

    Every failure is a TemplateError saying which part failed and why.
    """
    module_name, attributes = split_handler_path(path)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code: report whatever it raised
        raise TemplateError(
            f"handler {path!r}: module {module_name!r} does not import: {type(exc).__name__}: {exc}"
        ) from exc
    for index, attribute in enumerate(attributes):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            owner = ":".join([module_name, ".".join(attributes[:index])]).rstrip(":")
            raise TemplateError(
                f"handler {path!r}: {owner!r} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise TemplateError(f"handler {path!r} is not callable (it is a {type(target).__name__})")
    handler: Callable[..., Any] = target
    return handler


def handler_path_of(function: Callable[..., Any]) -> str:
    """The handler path naming ``function``: ``f"{__module__}:{__qualname__}"``."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname:
        raise TemplateError(f"cannot derive a handler path from {function!r}: give handler=")
    return f"{module}:{qualname}"
