"""Handlers that ship with Tasker, for demos and tests: ``tasker.builtin_handlers:noop``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class _HasConfig(Protocol):
    @property
    def config(self) -> Mapping[str, Any]: ...


def noop(step: object) -> dict[str, Any]:
    """Do nothing; the step's results are ``{}``."""
    return {}


def echo(step: _HasConfig) -> dict[str, Any]:
    """Return the step's ``config`` as its results."""
    return dict(step.config)
