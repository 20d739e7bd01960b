"""dag: how long one workflow takes end to end with one worker process.

Two shapes: a 1 -> 1000 -> 1 fan-out/fan-in (1,002 steps) and a 200-step chain. Each
sample creates one task, starts a burst worker (concurrency 200, batch 100) and waits
for it to exit. The figure is first step started -> last step completed, read from the
database; the wall time from spawning the worker to its exit (start-up included) and the
time ``create_task`` took are kept beside it.

Creating a wide task on SQLite is cubic in its width here (``insert_edges``: 0.6 s at
width 100, 5.5 s at 200, 40 s at 400), so before using width 1000 on SQLite the scenario
times a width-200 task on a scratch file; above :data:`SQLITE_PROBE_LIMIT_SECONDS` it
uses width 200 on SQLite and says so (and goes back to 1000 once creation is fixed).
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import (
    Figure,
    Probe,
    Run,
    ScenarioResult,
    chain,
    create_tasks,
    fan_out_in,
    median,
    seconds_between,
    tasker_database,
    write_template,
)
from benchmarks.processes import (
    burst_run,
)

NAME = "dag"
SUMMARY = "wall time of a 1->1000->1 fan-out/fan-in task and of a 200-step chain, 1 worker"

FAN_TARGET_SECONDS = 0.4
SQLITE_PROBE_WIDTH = 200
SQLITE_PROBE_LIMIT_SECONDS = 0.5


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def sqlite_fan_width(run: Run, width: int, result: ScenarioResult) -> int:
    """``width``, unless creating a fan-out task on SQLite is too slow for it."""
    if width <= SQLITE_PROBE_WIDTH:
        return width
    probe = write_template(run, f"fan_{SQLITE_PROBE_WIDTH}", fan_out_in(SQLITE_PROBE_WIDTH))
    with tasker_database(run, "sqlite", f"{NAME}_sqlite_probe") as url:
        _, seconds = create_tasks(run, url, probe, 1)
    result.samples["sqlite_fan_creation_probe"] = {
        "width": SQLITE_PROBE_WIDTH,
        "create_seconds": seconds,
    }
    if seconds <= SQLITE_PROBE_LIMIT_SECONDS:
        return width
    result.notes.append(
        f"SQLite fan-out width reduced from {width} to {SQLITE_PROBE_WIDTH}: creating a "
        f"{SQLITE_PROBE_WIDTH}-wide task took {seconds:.1f} s (insert_edges is cubic in the "
        f"width on SQLite), so a {width}-wide one would take minutes"
    )
    return SQLITE_PROBE_WIDTH


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    width = run.pick(1000, 20)
    length = run.pick(200, 10)
    repeats = run.pick(3, 1)
    backends = run.scenario_backends()
    result.sizes = {
        "fan_width": width,
        "chain_length": length,
        "repeats": repeats,
        "worker": "1 process, concurrency 200, batch 100",
    }
    if not backends:
        result.skipped = "no backend available"
        return result
    widths = {b: sqlite_fan_width(run, width, result) if b == "sqlite" else width for b in backends}
    result.sizes["fan_width_per_backend"] = widths
    samples: dict[str, list[dict[str, Any]]] = {}
    for backend in backends:
        shapes = {
            "fan": write_template(run, f"fan_{widths[backend]}", fan_out_in(widths[backend])),
            "chain": write_template(run, f"chain_{length}", chain(length)),
        }
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            if run.smoke:
                # Both shapes in one worker run: checks the suite, not the timings.
                ids = {shape: create_tasks(run, url, t, 1)[0][0] for shape, t in shapes.items()}
                burst_run(run, url, processes=1)
                with Probe(url) as probe:
                    for shape, task_id in ids.items():
                        window = probe.step_window([task_id])
                        db_seconds = seconds_between(
                            window["first_started_at"], window["last_completed_at"]
                        )
                        samples[f"{backend}.{shape}"] = [
                            {"db_seconds": db_seconds, "wall_seconds": None, **window}
                        ]
                continue
            for _ in range(repeats):
                for shape, template in shapes.items():
                    (task_id,), created = create_tasks(run, url, template, 1)
                    sample = burst_run(run, url, processes=1, task_ids=[task_id])
                    sample["create_seconds"] = created
                    samples.setdefault(f"{backend}.{shape}", []).append(sample)
    result.samples.update(samples)
    for key, runs in samples.items():
        backend, shape = key.split(".")
        label = (
            f"1->{widths[backend]}->1 fan-out/fan-in, first start -> last done"
            if shape == "fan"
            else f"{length}-step chain, first start -> last done"
        )
        value = median([s["db_seconds"] for s in runs])
        detail = [f"wall incl. start-up {fmt(median([s['wall_seconds'] for s in runs]))}"]
        if runs[0].get("create_seconds") is not None:
            detail.append(f"create_task {fmt(median([s['create_seconds'] for s in runs]))}")
        if shape == "chain" and value is not None:
            detail.append(f"{value / length * 1000:.1f} ms/link")
        figure = result.add(
            Figure(
                NAME,
                backend,
                label,
                value,
                "s",
                better="lower",
                key=f"dag.{key}",
                detail="; ".join(detail),
            )
        )
        if key == "postgres.fan":
            figure.target = f"<= {FAN_TARGET_SECONDS} s and <= pgqueuer's emulation"
            figure.met = figure.value is not None and figure.value <= FAN_TARGET_SECONDS
    return result
