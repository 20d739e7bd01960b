"""Every error leaves the API as ``{"error": {"code", "message", "details"}}``.

Tasker's exceptions map to statuses here, in one table; FastAPI's own validation errors
and Starlette's 404/405 are rewritten into the same shape, and anything unexpected becomes
a 500 of that shape too (its traceback goes to the server log, not to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

logger = logging.getLogger("tasker.api")

# Most specific first: the first class the exception is an instance of decides.
_STATUS: tuple[tuple[type[TaskerError], int, str], ...] = (
    (TemplateNotFound, 404, "template_not_found"),
    (NotFound, 404, "not_found"),
    (ValidationError, 422, "validation_error"),
    (IdempotencyConflict, 409, "idempotency_conflict"),
    (SignalConflict, 409, "signal_conflict"),
    (InvalidTransition, 409, "invalid_transition"),
    (DatabaseUnavailable, 503, "database_unavailable"),
    (SchemaNotReady, 503, "schema_not_ready"),
    (TransientStoreError, 503, "database_busy"),
    (TemplateError, 500, "template_error"),
    (ConfigurationError, 500, "configuration_error"),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """Raised by routes and dependencies for an error the TaskerError tree has no name for."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def tasker_error_status(exc: TaskerError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "store_error"


def _details(exc: TaskerError) -> Any:
    if isinstance(exc, ValidationError):
        return exc.errors or [str(exc)]
    if isinstance(exc, IdempotencyConflict):
        return {"idempotency_key": exc.key, "task_id": exc.task_id}
    if isinstance(exc, SignalConflict):
        return {"task_id": exc.task_id, "signal": exc.name}
    if isinstance(exc, InvalidTransition):
        return {"entity": exc.entity, "from_state": exc.from_state, "to_state": exc.to_state}
    return None


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def validation_messages(errors: Sequence[Any]) -> list[str]:
    """Pydantic's errors as ``"body.context: Input should be a valid dictionary"`` lines."""
    return [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]


async def _on_tasker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TaskerError)
    status, code = tasker_error_status(exc)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return error_response(status, code, _message(exc), _details(exc), headers)


def _message(exc: TaskerError) -> str:
    return str(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    messages = validation_messages(exc.errors())
    return error_response(422, "invalid_request", "the request is invalid", messages)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot even decode (not UTF-8, nested too deep):
        # for the contract that is an invalid body like any other, so 422.
        detail = exc.detail if isinstance(exc.detail, str) else "unreadable body"
        return error_response(
            422, "invalid_request", "the request body could not be parsed", [f"body: {detail}"]
        )
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}"
    return error_response(exc.status_code, code, message, None, exc.headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback itself after this handler answers.
    return error_response(500, "internal_error", "internal server error")


async def _on_too_deep(request: Request, exc: Exception) -> JSONResponse:
    # json.loads recurses once per nesting level: a body of 100k "[" overflows the stack.
    return error_response(
        422, "invalid_request", "the request body is nested too deeply", ["body: too deep"]
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TaskerError, _on_tasker_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RecursionError, _on_too_deep)
    app.add_exception_handler(Exception, _on_unexpected)
