"""The DAG shapes of the workload, as templates the workers load.

Workers get ``TASKER_TEMPLATES=soak.shapes``: the loader imports this module and
registers every module-level template. The shapes are those of
:mod:`tasker.testing.patterns` (linear, diamond, tree, mixed, a wide fan-out); only the
handler changes: every step runs the soak handler, every third step (index 2, 5, 8, …)
its async twin, so both executor paths meet every misbehaviour.

All steps share the same limits, chosen for the chaos: six attempts leave three spare
for attempts that chaos takes away (a killed worker's step fails its attempt) on top of
the at most three a plan needs; a three-second timeout makes a stalled step visible
quickly; backoff is short so retries happen within the run.
"""

from __future__ import annotations

from typing import Any

from tasker.definitions import TemplateDefinition
from tasker.definitions.parse import parse_template
from tasker.testing import patterns

NAMESPACE = "soak"
SYNC_HANDLER = "soak.handlers:act"
ASYNC_HANDLER = "soak.handlers:act_async"
MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 3.0
BACKOFF = {"base_seconds": 0.2, "max_seconds": 2.0, "jitter": 0.1}
WIDE_FAN_OUT_WIDTH = 30


def is_async(index: int) -> bool:
    """Whether the step at ``index`` (declaration order) runs the async handler."""
    return index % 3 == 2


def soak_template(pattern: TemplateDefinition) -> TemplateDefinition:
    """``pattern``'s steps and edges in namespace ``soak``, run by the soak handlers."""
    steps: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "handler": ASYNC_HANDLER if is_async(index) else SYNC_HANDLER,
            "depends_on": list(spec.depends_on),
        }
        for index, spec in enumerate(pattern.steps)
    ]
    document = {
        "namespace": NAMESPACE,
        "name": pattern.name,
        "version": "1.0.0",
        "description": f"soak workload: the {pattern.name} shape of tasker.testing.patterns",
        "defaults": {
            "max_attempts": MAX_ATTEMPTS,
            "timeout_seconds": TIMEOUT_SECONDS,
            "backoff": BACKOFF,
        },
        "steps": steps,
    }
    return parse_template(document, source="python:soak.shapes")


LINEAR = soak_template(patterns.linear())  # 6 steps in a row
DIAMOND = soak_template(patterns.diamond())  # two diamonds stacked, 7 steps
TREE = soak_template(patterns.tree())  # binary tree whose leaves converge, 8 steps
MIXED = soak_template(patterns.mixed())  # chains, a diamond and fan-ins, 9 steps
WIDE_FAN_OUT = soak_template(patterns.fan_out(WIDE_FAN_OUT_WIDTH, name="wide_fan_out"))  # 32

# Shape name -> (template, share of the tasks). About 10 steps per task on average, a
# third of them in wide fan-outs.
SHAPES: dict[str, tuple[TemplateDefinition, float]] = {
    "linear": (LINEAR, 0.25),
    "diamond": (DIAMOND, 0.22),
    "tree": (TREE, 0.22),
    "mixed": (MIXED, 0.21),
    "wide_fan_out": (WIDE_FAN_OUT, 0.10),
}
