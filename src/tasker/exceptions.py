"""Tasker's exceptions, one tree with a single root.

::

    TaskerError
    ├── ConfigurationError          bad settings or URL
    ├── TemplateError               a template failed validation (file, step, problem)
    │   └── TemplateNotFound        no template with that namespace/name[@version]
    ├── ValidationError             bad input (context against its JSON Schema, arguments)
    ├── NotFound                    unknown task or step
    ├── IdempotencyConflict         same idempotency key, different request
    ├── SignalConflict              the same signal again, with a different payload
    ├── InvalidTransition           the state machine forbids this change
    └── StoreError                  the database failed
        ├── DatabaseUnavailable     cannot connect
        ├── SchemaNotReady          migrations have not been applied
        ├── DuplicateKey            a unique constraint refused a row
        └── TransientStoreError     deadlock, serialization failure, busy: safe to retry

    RetryableError, PermanentError  raised by handlers, not by Tasker
"""

from __future__ import annotations

from typing import Any


class TaskerError(Exception):
    """Root of every error Tasker raises."""


class ConfigurationError(TaskerError):
    pass


class TemplateError(TaskerError):
    """A template is invalid. ``source`` names the file (or module), ``step`` the step."""

    def __init__(self, message: str, *, source: str | None = None, step: str | None = None):
        self.problem = message
        self.source = source
        self.step = step
        where = []
        if source:
            where.append(source)
        if step:
            where.append(f"step {step!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class TemplateNotFound(TemplateError):
    pass


class ValidationError(TaskerError):
    """Bad input. ``errors`` lists every problem found, not just the first."""

    def __init__(self, message: str, errors: list[str] | None = None):
        self.errors = errors or []
        super().__init__(message)


class NotFound(TaskerError):
    pass


class IdempotencyConflict(TaskerError):
    def __init__(self, key: str, task_id: int):
        self.key = key
        self.task_id = task_id
        super().__init__(
            f"idempotency key {key!r} already used by task {task_id} with a different request"
        )


class SignalConflict(TaskerError):
    def __init__(self, task_id: int, name: str):
        self.task_id = task_id
        self.name = name
        super().__init__(
            f"task {task_id} already received signal {name!r} with a different payload"
        )


class InvalidTransition(TaskerError):
    """The state machine forbids the change. ``entity`` names it as a user would
    (``task 5``, ``step 'charge' of task 5``); ``message`` may explain the rule instead."""

    def __init__(self, entity: str, from_state: str, to_state: str, message: str | None = None):
        self.entity = entity
        # States may arrive as StrEnum members; keep and show their plain values.
        self.from_state = str(from_state)
        self.to_state = str(to_state)
        super().__init__(
            message or f"{entity} cannot go from {self.from_state!r} to {self.to_state!r}"
        )


class StoreError(TaskerError):
    pass


class DatabaseUnavailable(StoreError):
    pass


class SchemaNotReady(StoreError):
    pass


class RetryableError(Exception):
    """Raised by a handler: this attempt failed, try again.

    ``retry_after`` (seconds) asks for a specific delay instead of the computed backoff.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Raised by a handler: this step can never succeed, make no further attempts."""

    def __init__(self, message: str = "", **details: Any):
        super().__init__(message)
        self.details = details


class DuplicateKey(StoreError):
    """A unique constraint refused a row (used to detect idempotency races)."""


class TransientStoreError(StoreError):
    """The transaction lost a race (deadlock, serialization failure, busy database);
    running it again is safe."""
