"""The scenarios, in the order a full run executes them.

Each module has ``NAME``, ``SUMMARY`` (one line) and ``run(run: Run) -> ScenarioResult``.
Later scenarios may read earlier results of the same run (``run.results``): physical uses
throughput's transactions per step, and the summary relates Tasker to the baselines.
"""

from __future__ import annotations

from types import ModuleType

from benchmarks.scenarios import (
    baselines,
    bulk_create,
    crash_recovery,
    dag,
    dashboard,
    flow,
    history_scale,
    latency,
    maps,
    memory,
    physical,
    priority_claim,
    readiness,
    sqlite_processes,
    throughput,
)

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        throughput,
        dag,
        maps,
        latency,
        readiness,
        crash_recovery,
        baselines,
        physical,
        memory,
        sqlite_processes,
        dashboard,
        priority_claim,
        flow,
        bulk_create,
        history_scale,
    )
}

__all__ = ["SCENARIOS"]
