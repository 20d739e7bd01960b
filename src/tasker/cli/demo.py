"""``tasker demo``: the first thing a new user runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from tasker.exceptions import ConfigurationError


def demo_command(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Where the demo keeps its database and templates.", file_okay=False
        ),
    ] = Path(".tasker-demo"),
) -> None:
    """Create the embedded database and run the bundled example workflows, live.

    The first thing to run: it needs no configuration and prints a summary at the end.
    """
    try:
        # Imported here: the demo pulls in its example workflows, which no other command needs.
        demo = importlib.import_module("tasker.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "tasker.demo":
            raise
        raise ConfigurationError("the demo is not part of this installation") from None
    code: int = demo.run_demo(directory)
    raise typer.Exit(code)
