"""The API's error bodies back into Tasker's exceptions.

The server answers every error with ``{"error": {"code", "message", "details"}}`` and maps
Tasker's exceptions to codes in one table (``tasker.api.errors``). :func:`error_from_response`
reverses that table, so a caller catches the same class over HTTP as in process: an
unknown task is :class:`~tasker.exceptions.NotFound`, the same idempotency key for another
request :class:`~tasker.exceptions.IdempotencyConflict` (with its ``key`` and ``task_id``),
a context its schema refuses :class:`~tasker.exceptions.ValidationError` (with its
``errors``). What that tree has no class for gets one here::

    TaskerError
    ├── ApiError                an error answer with no Tasker class (.status, .code, .details)
    │   ├── Unauthorized        401: no token, or an unknown or revoked one
    │   ├── Forbidden           403: the token lacks the scope
    │   └── ServerUnavailable   no answer at all (refused, timed out, cut); .status is 0
    └── WaitTimeout             wait(): still not settled at the deadline (.task); also a
                                TimeoutError
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from tasker.exceptions import (
    ConfigurationError,
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidTransition,
    NotFound,
    SchemaNotReady,
    SignalConflict,
    TaskerError,
    TemplateError,
    TemplateNotFound,
    TransientStoreError,
    ValidationError,
)

if TYPE_CHECKING:
    from tasker.client._models import Task

__all__ = [
    "CODES",
    "ApiError",
    "Forbidden",
    "ServerUnavailable",
    "Unauthorized",
    "WaitTimeout",
    "error_from_response",
]


class ApiError(TaskerError):
    """An error answer the TaskerError tree has no class for (a 413, a 500, a proxy's 502).
    ``status`` is the HTTP status, ``code`` the body's code (``http_<status>`` when the
    body is not the API's), ``details`` its details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class Unauthorized(ApiError):
    """401: the server needs a token (``TASKER_AUTH=on``) and got none, or a bad one."""


class Forbidden(ApiError):
    """403: the token lacks the scope the operation needs (``details.required_scope``)."""


class ServerUnavailable(ApiError):
    """The request got no answer: the server is down, unreachable, or too slow."""

    def __init__(self, message: str):
        super().__init__(0, "server_unavailable", message)


class WaitTimeout(TaskerError, TimeoutError):
    """``wait()`` gave up: the task is not settled yet (it goes on; nothing is cancelled).
    ``task`` is the last state seen."""

    def __init__(self, task: Task, timeout_seconds: float):
        super().__init__(
            f"task {task.id} is still {task.status} after {timeout_seconds:g} s (it goes on)"
        )
        self.task = task
        self.timeout_seconds = timeout_seconds


def _errors(details: Any, message: str) -> list[str]:
    if isinstance(details, list):
        return [str(d) for d in details]
    return [message]


def _validation(message: str, details: Any) -> TaskerError:
    errors = _errors(details, message)
    # FastAPI's "the request is invalid" alone says nothing: name the problems too.
    text = message if errors == [message] else f"{message}: {'; '.join(errors)}"
    return ValidationError(text, errors)


def _idempotency(message: str, details: Any) -> TaskerError:
    if isinstance(details, dict) and {"idempotency_key", "task_id"} <= set(details):
        return IdempotencyConflict(details["idempotency_key"], details["task_id"])
    return ApiError(409, "idempotency_conflict", message, details)


def _signal(message: str, details: Any) -> TaskerError:
    if isinstance(details, dict) and {"task_id", "signal"} <= set(details):
        return SignalConflict(details["task_id"], details["signal"])
    return ApiError(409, "signal_conflict", message, details)


def _transition(message: str, details: Any) -> TaskerError:
    if isinstance(details, dict) and {"entity", "from_state", "to_state"} <= set(details):
        return InvalidTransition(
            details["entity"], details["from_state"], details["to_state"], message
        )
    return ApiError(409, "invalid_transition", message, details)


# The server's codes (tasker.api.errors) and the exception each becomes here.
CODES: dict[str, Callable[[str, Any], TaskerError]] = {
    "template_not_found": lambda message, _: TemplateNotFound(message),
    "not_found": lambda message, _: NotFound(message),
    "validation_error": _validation,
    "invalid_request": _validation,
    "invalid_cursor": _validation,
    "idempotency_conflict": _idempotency,
    "signal_conflict": _signal,
    "invalid_transition": _transition,
    "database_unavailable": lambda message, _: DatabaseUnavailable(message),
    "schema_not_ready": lambda message, _: SchemaNotReady(message),
    "database_busy": lambda message, _: TransientStoreError(message),
    "template_error": lambda message, _: TemplateError(message),
    "configuration_error": lambda message, _: ConfigurationError(message),
}


def error_from_response(response: httpx.Response) -> TaskerError:
    """The exception an error answer stands for (the response's status is >= 400)."""
    status = response.status_code
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        code, message, details = f"http_{status}", f"HTTP {status}: {text}", None
    if status == 401:
        return Unauthorized(status, code, message, details)
    if status == 403:
        return Forbidden(status, code, message, details)
    make = CODES.get(code)
    if make is None:
        return ApiError(status, code, message, details)
    return make(message, details)
