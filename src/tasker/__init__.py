"""Tasker: workflow orchestration for DAGs of Python steps, on SQLite or PostgreSQL."""

from __future__ import annotations

from tasker.clock import Clock, FakeClock, SystemClock
from tasker.config import Settings
from tasker.definitions import Template, TemplateDefinition, TemplateRegistry
from tasker.engine.creation import TaskRequest
from tasker.exceptions import PermanentError, RetryableError, TaskerError
from tasker.facade import Tasker
from tasker.runtime.context import StepContext
from tasker.runtime.worker import Worker, WorkerOptions
from tasker.states import State

__version__ = "0.1.0"

__all__ = [
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
