"""maps: a map over N items against the static 1 -> 1000 -> 1 fan-out of the same run.

A map expands at run time: its source step returns N items, the transaction that records
it creates the N instances in one statement, and the fan-in step receives the N results
as one list. The static fan-out's 1,000 leaves are written when the task is created.
Both run with one burst worker (concurrency 200, batch 100); the figure is milliseconds
per item (first step started -> last step completed, read from the database, divided by
the number of parallel steps), and the ratio map / static, which issue 13 wants <= 1.5.
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import (
    Figure,
    Probe,
    Run,
    ScenarioResult,
    create_tasks,
    fan_out_in,
    median,
    seconds_between,
    step,
    tasker_database,
    write_template,
)
from benchmarks.processes import burst_run

NAME = "maps"
SUMMARY = "a map over 10,000 items vs the static 1->1000->1 fan-out, per item, 1 worker"

RATIO_TARGET = 1.5


def map_template(count: int) -> list[dict[str, Any]]:
    return [
        step("source", "bench_handlers:items", config={"count": count}),
        step("each", depends_on=["source"], map="source.items", max_items=count),
        step("merge", "bench_handlers:fan_in", depends_on=["each"]),
    ]


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    items = run.pick(10_000, 50)
    width = run.pick(1000, 20)
    repeats = run.pick(2, 1)
    backends = run.scenario_backends()
    result.sizes = {"map_items": items, "static_width": width, "repeats": repeats}
    if not backends:
        result.skipped = "no backend available"
        return result
    shapes = {
        "static": (write_template(run, f"fan_{width}", fan_out_in(width)), width),
        "map": (write_template(run, f"map_{items}", map_template(items)), items),
    }
    for backend in backends:
        per_item: dict[str, list[float]] = {}
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            for _ in range(repeats):
                for shape, (template, n) in shapes.items():
                    (task_id,), _ = create_tasks(run, url, template, 1)
                    burst_run(run, url, processes=1, task_ids=[task_id])
                    with Probe(url) as probe:
                        window = probe.step_window([task_id])
                    seconds = seconds_between(
                        window["first_started_at"], window["last_completed_at"]
                    )
                    if seconds is not None:
                        per_item.setdefault(shape, []).append(seconds / n * 1000)
                    result.samples.setdefault(f"{backend}.{shape}", []).append(
                        {"db_seconds": seconds, "items": n, **window}
                    )
        static, mapped = median(per_item.get("static", [])), median(per_item.get("map", []))
        result.add(
            Figure(NAME, backend, f"static 1->{width}->1, per leaf", static, "ms",
                   better="lower", key=f"maps.{backend}.static")
        )  # fmt: skip
        figure = result.add(
            Figure(NAME, backend, f"map over {items} items, per item", mapped, "ms",
                   better="lower", key=f"maps.{backend}.map")
        )  # fmt: skip
        if static and mapped is not None:
            figure.ratios["static fan-out, same run"] = round(mapped / static, 2)
            figure.target = f"<= {RATIO_TARGET}x the static fan-out per item"
            figure.met = mapped / static <= RATIO_TARGET
    return result
