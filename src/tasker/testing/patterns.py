"""Ready-made DAG shapes built on the scripted handler, for tests and benchmarks.

Every factory returns a validated :class:`~tasker.TemplateDefinition` whose steps run
``tasker.testing.handlers:scripted`` (``scripted_async`` for a step whose plan makes it
time out, so the timeout cancels it instead of abandoning a thread). Common arguments:

- ``plans``: ``{step name: plan}``; a plan is the step's config (``fail_times(2)``...).
- ``namespace`` (default ``"testing"``), ``name`` (default: the shape's name),
  ``version`` (default ``"1.0.0"``).
- ``max_attempts`` (default 3), ``timeout_seconds`` (per attempt, default 30 s),
  ``backoff`` (a :class:`~tasker.retry.Backoff` or its mapping; default the engine's).

Edges below read ``parent -> child``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any, TypedDict, Unpack

from tasker.definitions import TemplateDefinition, validate_template
from tasker.definitions.parse import parse_template
from tasker.exceptions import TemplateError
from tasker.retry import Backoff
from tasker.testing.handlers import check_plan

SCRIPTED = "tasker.testing.handlers:scripted"
SCRIPTED_ASYNC = "tasker.testing.handlers:scripted_async"
DEFAULT_TIMEOUT_SECONDS = 30.0

Plans = Mapping[str, Mapping[str, Any]]


class PatternOptions(TypedDict, total=False):
    """The common arguments of every pattern (see the module docstring)."""

    plans: Plans | None
    namespace: str
    name: str
    max_attempts: int
    timeout_seconds: float | None
    backoff: Backoff | Mapping[str, float] | None
    version: str


def _named(default: str, options: PatternOptions) -> PatternOptions:
    """``options`` with the pattern's own name unless the caller chose one."""
    named = PatternOptions(name=default)
    named.update(options)
    return named


# (step name, parents), parents first
Shape = list[tuple[str, Sequence[str]]]


def chain(
    length: int,
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """``length`` steps in a row: ``step_1 -> step_2 -> ... -> step_<length>``."""
    if length < 1:
        raise ValueError(f"a chain needs at least one step, got length={length}")
    shape: Shape = [(f"step_{i}", [f"step_{i - 1}"] if i > 1 else []) for i in range(1, length + 1)]
    return build(shape, **_named("chain", options))


def linear(
    steps: int = 6,
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """Six steps (by default) in a row: ``step_1 -> step_2 -> ... -> step_6``."""
    return chain(steps, **_named("linear", options))


def diamond(
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """Two diamonds stacked, 7 steps::

    start -> left_1, right_1
    left_1, right_1 -> middle
    middle -> left_2, right_2
    left_2, right_2 -> end
    """
    shape: Shape = [
        ("start", []),
        ("left_1", ["start"]),
        ("right_1", ["start"]),
        ("middle", ["left_1", "right_1"]),
        ("left_2", ["middle"]),
        ("right_2", ["middle"]),
        ("end", ["left_2", "right_2"]),
    ]
    return build(shape, **_named("diamond", options))


def parallel_merge(
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """Three independent two-step branches merged at the end, 7 steps::

    a_1 -> a_2;  b_1 -> b_2;  c_1 -> c_2      (a_1, b_1, c_1 are roots)
    a_2, b_2, c_2 -> merge
    """
    shape: Shape = []
    for branch in ("a", "b", "c"):
        shape += [(f"{branch}_1", []), (f"{branch}_2", [f"{branch}_1"])]
    shape.append(("merge", ["a_2", "b_2", "c_2"]))
    return build(shape, **_named("parallel_merge", options))


def tree(
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """A binary tree of depth 2 whose four leaves converge, 8 steps::

    root -> left, right
    left -> leaf_a, leaf_b;  right -> leaf_c, leaf_d
    leaf_a, leaf_b, leaf_c, leaf_d -> converge
    """
    shape: Shape = [
        ("root", []),
        ("left", ["root"]),
        ("right", ["root"]),
        ("leaf_a", ["left"]),
        ("leaf_b", ["left"]),
        ("leaf_c", ["right"]),
        ("leaf_d", ["right"]),
        ("converge", ["leaf_a", "leaf_b", "leaf_c", "leaf_d"]),
    ]
    return build(shape, **_named("tree", options))


def mixed(
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """Chains, a diamond and fan-ins together, 9 steps::

    init -> left, right
    left -> left_transform;  right -> right_transform
    left, right -> validate
    left_transform, validate -> combine
    right_transform, validate -> analyze
    combine, analyze -> finalize
    """
    shape: Shape = [
        ("init", []),
        ("left", ["init"]),
        ("right", ["init"]),
        ("left_transform", ["left"]),
        ("right_transform", ["right"]),
        ("validate", ["left", "right"]),
        ("combine", ["left_transform", "validate"]),
        ("analyze", ["right_transform", "validate"]),
        ("finalize", ["combine", "analyze"]),
    ]
    return build(shape, **_named("mixed", options))


def fan_out(
    width: int,
    **options: Unpack[PatternOptions],
) -> TemplateDefinition:
    """One step fanning out to ``width`` parallel steps that fan back in, width + 2 steps::

    source -> worker_1, ..., worker_<width>
    worker_1, ..., worker_<width> -> sink
    """
    if width < 1:
        raise ValueError(f"fan_out needs a width of at least 1, got {width}")
    workers = [f"worker_{i}" for i in range(1, width + 1)]
    shape: Shape = [("source", []), *((w, ["source"]) for w in workers), ("sink", workers)]
    return build(shape, **_named("fan_out", options))


def build(
    shape: Sequence[tuple[str, Sequence[str]]],
    *,
    plans: Plans | None = None,
    namespace: str = "testing",
    name: str = "custom",
    max_attempts: int = 3,
    timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS,
    backoff: Backoff | Mapping[str, float] | None = None,
    version: str = "1.0.0",
) -> TemplateDefinition:
    """A scripted template of any shape: ``[(step name, [parent names]), ...]``."""
    plans = plans or {}
    names = [step for step, _ in shape]
    _check_plans(plans, names, f"{namespace}/{name}")
    steps: list[dict[str, Any]] = []
    for step, parents in shape:
        plan = dict(plans.get(step, {}))
        check_plan(plan, step)
        steps.append(
            {
                "name": step,
                "handler": handler_for(plan),
                "depends_on": list(parents),
                "config": plan,
            }
        )
    defaults: dict[str, Any] = {"max_attempts": max_attempts, "timeout_seconds": timeout_seconds}
    if backoff is not None:
        defaults["backoff"] = asdict(backoff) if isinstance(backoff, Backoff) else dict(backoff)
    data = {
        "namespace": namespace,
        "name": name,
        "version": version,
        "defaults": defaults,
        "steps": steps,
    }
    return parse_template(data, source=f"tasker.testing.patterns:{name}")


def apply_plans(template: TemplateDefinition, plans: Plans) -> TemplateDefinition:
    """``template`` with each planned step's config updated by its plan.

    A scripted step whose plan makes it time out switches to ``scripted_async``.
    """
    if not plans:
        return template
    _check_plans(plans, [spec.name for spec in template.steps], template.key)
    steps = []
    for spec in template.steps:
        plan = plans.get(spec.name)
        if plan is None:
            steps.append(spec)
            continue
        handler = spec.handler
        if handler in (SCRIPTED, SCRIPTED_ASYNC):
            # Only the scripted handlers read plans; other handlers get the keys as config.
            check_plan(plan, spec.name)
            handler = handler_for(plan)
        steps.append(replace(spec, handler=handler, config={**spec.config, **dict(plan)}))
    planned = replace(template, steps=tuple(steps))
    validate_template(planned, check_handlers=False)
    return planned


def handler_for(plan: Mapping[str, Any]) -> str:
    """The scripted handler a plan needs: the async one when the step must time out."""
    return SCRIPTED_ASYNC if plan.get("timeout_times") else SCRIPTED


def _check_plans(plans: Plans, names: Sequence[str], template: str) -> None:
    unknown = sorted(set(plans) - set(names))
    if unknown:
        raise TemplateError(
            f"plans name unknown step {unknown[0]!r}; steps: {', '.join(names)}", source=template
        )
