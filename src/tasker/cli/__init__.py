"""The ``tasker`` command line (Typer). The entry point is :func:`main`."""

from __future__ import annotations

from tasker.cli.main import app, main, run

__all__ = ["app", "main", "run"]
