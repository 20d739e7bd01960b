"""The REST API application: ``create_app(tasker, ...)`` and the uvicorn factory.

``tasker serve`` and ``uvicorn tasker.api:app_from_settings --factory`` build the same app
from ``TASKER_*`` settings. The API-only settings read here (until they join
:class:`~tasker.config.Settings`): ``TASKER_CORS_ORIGINS`` (comma-separated, default none:
CORS off) and ``TASKER_MAX_BODY_BYTES`` (default 1,000,000 bytes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasker import __version__
from tasker.api import (
    dashboard,
    routes_analytics,
    routes_events,
    routes_health,
    routes_schedules,
    routes_tasks,
    routes_templates,
    routes_workers,
)
from tasker.api.errors import error_response, install_error_handlers
from tasker.api.metrics import HealthMetrics
from tasker.api.security import Authenticator
from tasker.auth import TokenVerifier
from tasker.config import Settings
from tasker.exceptions import ConfigurationError, TaskerError
from tasker.facade import Tasker
from tasker.observability.tracing import configure_from_env as configure_tracing

logger = logging.getLogger("tasker.api")

DEFAULT_MAX_BODY_BYTES = 1_000_000

DESCRIPTION = """\
Create and follow Tasker tasks, inspect their readiness and history, and recover failures.

Errors are `{"error": {"code", "message", "details"}}`. With `TASKER_AUTH=on`, every call
but the probes `/health/live` and `/health/ready` needs `Authorization: Bearer TOKEN`
(`tasker auth token create`): GETs (`/metrics` and `/health/status` included) need the
scope `tasks:read`, POSTs `tasks:write` (which grants `tasks:read` too: a client reads back
what it creates), and `admin` grants both.
"""


def create_app(
    tasker: Tasker,
    *,
    auth: bool,
    cors_origins: Sequence[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    close_on_shutdown: bool = False,
) -> FastAPI:
    """The API over ``tasker``. ``close_on_shutdown`` hands the Tasker's lifetime to the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_on_shutdown:
                tasker.close()

    app = TaskerAPI(
        auth=auth,
        title="Tasker",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # the dashboard serves /docs, offline (tasker.api.dashboard)
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.tasker = tasker
    app.state.authenticator = Authenticator(TokenVerifier(tasker) if auth else None)
    app.state.metrics = HealthMetrics()
    install_error_handlers(app)
    routers = (
        routes_tasks,
        routes_templates,
        routes_schedules,
        routes_events,
        routes_workers,
        routes_analytics,
    )
    for module in (*routers, routes_health):
        app.include_router(module.router)
    dashboard.install(app)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Added last, so it runs first: an oversized body is refused before anything reads it.
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app


def operation_id(route: APIRoute) -> str:
    """The operation id of a route that names none: its function's name in camelCase
    (``list_schedules`` -> ``listSchedules``), never FastAPI's ``list_schedules_v1_…_get``.

    Every route names its id (``operation_id=`` in its decorator, camelCase, unique:
    tests/acceptance/test_api_polish.py); client generators turn them into method names.
    """
    first, *rest = route.name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class TaskerAPI(FastAPI):
    """FastAPI whose OpenAPI document declares bearer security only where it is enforced.

    The routes always take the optional bearer credentials; with authentication off the
    document must not claim a token is required, nor that 401 and 403 can happen.
    """

    def __init__(self, *, auth: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.auth_enabled = auth

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        schema = super().openapi()
        secured = False
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not self.auth_enabled:
                    operation.pop("security", None)
                    for status in ("401", "403"):
                        operation.get("responses", {}).pop(status, None)
                secured = secured or "security" in operation
        if not secured:
            schema.get("components", {}).pop("securitySchemes", None)
        return schema


def app_from_settings(
    settings: Settings | None = None, env: Mapping[str, str] | None = None
) -> FastAPI:
    """The app configured from the environment (uvicorn ``--factory`` calls this bare)."""
    env = os.environ if env is None else env
    settings = settings or Settings.from_env(env)
    options = ApiOptions.from_env(env)
    configure_tracing(service_name="tasker-api")
    tasker = Tasker.from_settings(settings)
    try:
        tasker.sync_schedules()  # so that GET /v1/schedules lists what its templates declare
    except TaskerError as exc:  # not migrated yet: /health/ready says so
        logger.warning("schedules not stored: %s", exc)
    return create_app(
        tasker,
        auth=settings.auth,
        cors_origins=options.cors_origins,
        max_body_bytes=options.max_body_bytes,
        close_on_shutdown=True,
    )


@dataclass(frozen=True)
class ApiOptions:
    """
    cors_origins: origins allowed by CORS (``TASKER_CORS_ORIGINS``, comma-separated,
        default none: CORS off).
    max_body_bytes: largest request body accepted (``TASKER_MAX_BODY_BYTES``, default
        1,000,000 bytes); larger ones get 413.
    """

    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiOptions:
        origins = env.get("TASKER_CORS_ORIGINS", "")
        raw_limit = env.get("TASKER_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if limit < 1:
            raise ConfigurationError(
                f"TASKER_MAX_BODY_BYTES must be a positive number of bytes, got {raw_limit!r}"
            )
        return cls(
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            max_body_bytes=limit,
        )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 in the API's error shape.

    A declared ``Content-Length`` is checked before reading; a chunked body is buffered up
    to the limit and then replayed to the app (at most ``max_bytes`` held per request).
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.strip().isdigit() and int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([replay], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request body larger than {self.max_bytes} bytes",
            {"max_bytes": self.max_bytes},
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
