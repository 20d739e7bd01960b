"""The dashboard ``tasker serve`` serves at ``/``: server-rendered pages over the facade,
with a little vanilla JavaScript for live updates (Server-Sent Events) and local times.
Every asset is in this package (``static/``, ``templates/``): nothing is loaded from
elsewhere. See docs/dashboard.md.

``/docs`` is an API reference rendered here from the OpenAPI document, because FastAPI's
default page loads Swagger UI from a CDN (blank offline) and the one PyPI package that
bundles Swagger UI (swagger-ui-bundle 1.1.0) ships Swagger UI 4, which cannot render the
OpenAPI 3.1 documents FastAPI writes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from tasker.api.dashboard import actions, pages_more, pages_tasks
from tasker.api.dashboard.web import HERE, DashboardError, NeedsLogin, render

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the dashboard's pages, its static files and the offline ``/docs`` to ``app``."""
    for module in (pages_tasks, pages_more, actions):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    @app.get("/docs", include_in_schema=False, response_class=Response)
    def docs(request: Request) -> Response:
        spec = app.openapi()
        operations = [
            {"method": method.upper(), "path": path, **operation}
            for path, methods in spec.get("paths", {}).items()
            for method, operation in methods.items()
        ]
        return render(
            request,
            "docs.html",
            {"title": "API reference", "spec": spec, "operations": operations},
        )

    async def on_dashboard_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DashboardError)
        return render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message, "back": exc.back, "status": exc.status},
            status=exc.status,
        )

    async def on_needs_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NeedsLogin)
        return actions.login_response(request, exc.message, request.url.path, 401)

    app.add_exception_handler(DashboardError, on_dashboard_error)
    app.add_exception_handler(NeedsLogin, on_needs_login)
