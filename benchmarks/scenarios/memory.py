"""memory: does a long-running worker's memory stay flat?

One worker process (concurrency 200, batch 100) runs 100,000 no-op steps (1,000 tasks of
100 independent steps; ``--smoke``: 2,000). Every second its VmRSS and VmHWM are read
from ``/proc/<pid>/status``, with its thread count and the steps done so far
(``tasks.done_steps``): a handler pool that grew would show there.
Reported: RSS when 10 %, 50 % and 100 % of the steps were done, the peak (VmHWM), and
the growth from 50 % to 100 %; "flat" means that growth is at most 5 %.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import (
    Figure,
    Probe,
    Run,
    ScenarioResult,
    create_tasks,
    tasker_database,
    wide,
    write_template,
)
from benchmarks.processes import (
    rss_kib,
    start_worker,
)

NAME = "memory"
SUMMARY = "worker RSS over 100,000 no-op steps: at 10 %, 50 %, 100 %, and the peak"

FLAT_GROWTH = 0.05  # RSS growth from 50 % to 100 % of the run that still counts as flat
STEPS_PER_TASK = 100


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    steps = run.pick(100_000, 2_000)
    tasks = steps // STEPS_PER_TASK
    interval = run.pick(1.0, 0.1)
    backend = next(iter(run.scenario_backends()), None)
    result.sizes = {
        "steps": steps,
        "tasks": tasks,
        "steps_per_task": STEPS_PER_TASK,
        "sample_interval_seconds": interval,
        "worker": "1 process, concurrency 200, batch 100",
    }
    if backend is None:
        result.skipped = "no backend available"
        return result
    template = write_template(run, f"wide_{STEPS_PER_TASK}", wide(STEPS_PER_TASK))
    with tasker_database(run, backend, f"{NAME}_{backend}") as url:
        _, creation_seconds = create_tasks(run, url, template, tasks)
        worker = start_worker(run, url, concurrency=200, batch_size=100, burst=False)
        probe = Probe(url)
        trace: list[dict[str, Any]] = []
        try:
            worker.wait_ready()
            started = time.perf_counter()
            deadline = started + run.pick(420, 60)
            while time.perf_counter() < deadline:
                done = int(probe.one("SELECT sum(done_steps) AS n FROM tasker.tasks")["n"] or 0)
                memory = rss_kib(worker.pid)
                trace.append(
                    {"seconds": time.perf_counter() - started, "steps_done": done, **memory}
                )
                if done >= steps or worker.popen.poll() is not None:
                    break
                time.sleep(interval)
            run_seconds = time.perf_counter() - started
        finally:
            probe.close()
            worker.terminate()
    result.samples = {"trace": trace, "creation_seconds": creation_seconds, "backend": backend}
    if not trace or trace[-1]["steps_done"] < steps:
        raise RuntimeError(f"the worker did not finish {steps} steps: {trace[-1:]}")

    def rss_at(fraction: float) -> dict[str, Any]:
        return next(s for s in trace if s["steps_done"] >= fraction * steps and "VmRSS" in s)

    points = {f"{int(f * 100)}%": rss_at(f) for f in (0.1, 0.5, 1.0)}
    result.samples["points"] = points
    mib = {label: point["VmRSS"] / 1024 for label, point in points.items()}
    growth = (mib["100%"] - mib["50%"]) / mib["50%"]
    peak = max(s.get("VmHWM", 0) for s in trace) / 1024
    for label in ("10%", "50%", "100%"):
        figure = result.add(
            Figure(
                NAME,
                backend,
                f"worker RSS at {label} of {steps:,} steps",
                mib[label],
                "MiB",
                better="lower",
                key=f"memory.{backend}.rss_{label[:-1]}",
            )
        )
        figure.ratio_to("x RSS at 10%", mib["10%"])
    flat = result.add(
        Figure(
            NAME,
            backend,
            "RSS growth from 50 % to 100 % of the run",
            growth * 100,
            "%",
            better="lower",
            key=f"memory.{backend}.growth",
            target=f"<= {FLAT_GROWTH * 100:.0f} % (flat after warm-up)",
            detail=f"peak (VmHWM) {peak:.1f} MiB; {steps / run_seconds:,.0f} steps/s sustained;"
            f" threads at 50 % / 100 %: {points['50%'].get('Threads')} /"
            f" {points['100%'].get('Threads')}",
        )
    )
    flat.met = growth <= FLAT_GROWTH
    return result
