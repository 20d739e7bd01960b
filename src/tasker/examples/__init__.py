"""Example workflows bundled with Tasker: ``tasker demo`` runs them, and they are a
starting point for your own.

Each has a template (``ecommerce.yaml``, ``pipeline.yaml``, ``approval.yaml`` in this
directory) and a handlers module (``tasker.examples.ecommerce:charge``...). Handlers
sleep ``context["work_seconds"]`` (default 0) to stand for real work, so the demo's
live view has something to show while tests stay fast.
"""

from __future__ import annotations

import time
from pathlib import Path

from tasker.runtime.context import StepContext

TEMPLATES_DIRECTORY = Path(__file__).parent


def simulate_work(step: StepContext) -> None:
    """Sleep ``context["work_seconds"]``: the time a real handler would spend on I/O."""
    seconds = float(step.context.get("work_seconds", 0.0))
    if seconds > 0:
        time.sleep(seconds)
