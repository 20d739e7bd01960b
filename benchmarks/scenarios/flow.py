"""flow: what concurrency and rate limits cost the workers (issue 14).

Three templates of one no-op step, the same but for flow control: ``flow_free`` has none,
``flow_keyed`` a concurrency key on every task (``concurrency: {key: customer_id, limit:
1}``, one customer per task, so the key is checked and held on every claim but never
makes a step wait), and ``flow_limited`` the key and a per-step limit of 50
(``concurrency: {limit: 50}``), which binds: the workers have 400 slots. Every task has
the context ``{"customer_id": i}``, so they differ only in the limits. The cases
run interleaved on copies of one seed database per template, like ``throughput``:
steps/s between the first step started and the last completed (database times), median
of the repeats, and the limited figure as a ratio to the free one of the same run.
"""

from __future__ import annotations

import contextlib
from typing import Any

from benchmarks.harness import (
    Figure,
    Run,
    ScenarioResult,
    clone,
    create_tasks,
    median,
    single,
    step,
    tasker_database,
    write_template,
)
from benchmarks.processes import burst_run

NAME = "flow"
SUMMARY = "flow: no-op steps/s with a per-step limit of 50 and a concurrency key on every task"

STEP_LIMIT = 50


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    tasks = run.pick(2000, 40)
    repeats = run.pick(3, 1)
    backends = run.scenario_backends()
    processes = {"postgres": 2, "sqlite": 1}
    result.sizes = {
        "tasks": tasks,
        "repeats": repeats,
        "step_limit": STEP_LIMIT,
        "key": "customer_id, limit 1, a different customer per task",
        "worker": "concurrency 200, batch 100; 2 processes on PostgreSQL, 1 on SQLite",
    }
    if not backends:
        result.skipped = "no backend available"
        return result
    write_template(run, "flow_free", single())
    # The key alone (it never makes a step wait here): what checking and holding it costs.
    write_template(
        run, "flow_keyed", single(), keys={"concurrency": {"key": "customer_id", "limit": 1}}
    )
    write_template(
        run,
        "flow_limited",
        [step("only", concurrency={"limit": STEP_LIMIT})],
        keys={"concurrency": {"key": "customer_id", "limit": 1}},
    )
    workloads = ("flow_free", "flow_keyed", "flow_limited")
    samples: dict[str, list[dict[str, Any]]] = {f"{b}.{w}": [] for b in backends for w in workloads}
    with contextlib.ExitStack() as stack:
        seeds: dict[str, str] = {}
        for backend in backends:
            for workload in workloads:
                url = stack.enter_context(tasker_database(run, backend, f"{workload}_{backend}"))
                create_tasks(run, url, workload, tasks, context=lambda i: {"customer_id": i})
                seeds[f"{backend}.{workload}"] = url
        for _ in range(repeats):
            for backend in backends:
                for workload in workloads:
                    key = f"{backend}.{workload}"
                    with clone(run, seeds[key], f"{NAME}_run") as url:
                        samples[key].append(burst_run(run, url, processes=processes[backend]))
    result.samples = samples
    for backend in backends:
        figures = {}
        for workload, label in (
            ("flow_free", "steps/s, no limits"),
            ("flow_keyed", "steps/s, a key on every task (never full)"),
            ("flow_limited", f"steps/s, step limit {STEP_LIMIT} + a key on every task"),
        ):
            runs = samples[f"{backend}.{workload}"]
            assert all(s["completed"] == tasks for s in runs), [s["completed"] for s in runs]
            figures[workload] = result.add(
                Figure(
                    NAME,
                    backend,
                    f"{label}, {processes[backend]} proc",
                    median([s["steps_per_second"] for s in runs]),
                    "steps/s",
                    key=f"{NAME}.{backend}.{workload.removeprefix('flow_')}",
                )
            )
        free = figures["flow_free"]
        free_commits = median([s.get("commits_per_step") for s in samples[f"{backend}.flow_free"]])
        for workload in ("flow_keyed", "flow_limited"):
            figure = figures[workload]
            if free.value and figure.value:
                figure.ratio_to("x no limits", free.value)
            runs = samples[f"{backend}.{workload}"]
            if backend == "postgres":
                commits = median([s.get("commits_per_step") for s in runs])
                figure.detail = f"{commits:.3f} commits/step (no limits: {free_commits:.3f})"
    return result
