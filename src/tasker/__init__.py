"""Tasker: workflow orchestration for DAGs of Python steps, on SQLite or PostgreSQL.

The public names are imported when first used (PEP 562), not with the package: every
``tasker.…`` import, the CLI's included, would otherwise pay for the whole engine, the
worker and their dependencies (about 0.4 s) before doing anything.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasker.branch import Branch
    from tasker.clock import Clock, FakeClock, SystemClock
    from tasker.config import Settings
    from tasker.definitions import Template, TemplateDefinition, TemplateRegistry
    from tasker.engine.batch import BatchItemResult
    from tasker.engine.creation import TaskRequest
    from tasker.exceptions import PermanentError, RetryableError, TaskerError
    from tasker.facade import Tasker
    from tasker.runtime.context import StepContext
    from tasker.runtime.worker import Worker, WorkerOptions
    from tasker.states import State

__version__ = "0.1.0"

__all__ = [
    "BatchItemResult",
    "Branch",
    "Clock",
    "FakeClock",
    "PermanentError",
    "RetryableError",
    "Settings",
    "State",
    "StepContext",
    "SystemClock",
    "TaskRequest",
    "Tasker",
    "TaskerError",
    "Template",
    "TemplateDefinition",
    "TemplateRegistry",
    "Worker",
    "WorkerOptions",
    "__version__",
]

# Where each public name lives (kept in step with the TYPE_CHECKING imports above by
# tests/unit/test_public_api.py).
_HOMES = {
    "Branch": "tasker.branch",
    "Clock": "tasker.clock",
    "FakeClock": "tasker.clock",
    "SystemClock": "tasker.clock",
    "Settings": "tasker.config",
    "Template": "tasker.definitions",
    "TemplateDefinition": "tasker.definitions",
    "TemplateRegistry": "tasker.definitions",
    "BatchItemResult": "tasker.engine.batch",
    "TaskRequest": "tasker.engine.creation",
    "PermanentError": "tasker.exceptions",
    "RetryableError": "tasker.exceptions",
    "TaskerError": "tasker.exceptions",
    "Tasker": "tasker.facade",
    "StepContext": "tasker.runtime.context",
    "Worker": "tasker.runtime.worker",
    "WorkerOptions": "tasker.runtime.worker",
    "State": "tasker.states",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tasker' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once found, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
