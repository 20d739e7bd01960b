"""``python -m tasker``: the same as the ``tasker`` console script."""

from __future__ import annotations

from tasker.cli import main

main()
