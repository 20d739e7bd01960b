"""The REST API (FastAPI): ``create_app(tasker, auth=...)``, or ``app_from_settings`` for
``uvicorn tasker.api:app_from_settings --factory``."""

from __future__ import annotations

from tasker.api.app import ApiOptions, app_from_settings, create_app

__all__ = ["ApiOptions", "app_from_settings", "create_app"]
