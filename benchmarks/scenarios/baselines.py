"""baselines: PgQueuer and Procrastinate doing the same work in the same run.

Each library gets its own fresh PostgreSQL database and worker processes
(``benchmarks/baseline_pgqueuer.py``, ``benchmarks/baseline_procrastinate.py``):

* no-op throughput: 2,000 jobs enqueued first, then 1 and 2 worker processes drain them;
  jobs/s between the first job started and the last one done, from the library's own
  log table;
* fan-out/fan-in emulation: one job enqueues 1,000 jobs; each decrements a counter row;
  the one reaching zero enqueues the final job; first start -> final job done.

The summary divides Tasker's figures by these (a Tasker/baseline ratio above 1 is better
for throughput, below 1 is better for times). A library that is not installed is skipped
with a message (``pip install -r requirements-bench.lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import sys
import time
from typing import Any

from benchmarks.harness import (
    Figure,
    Run,
    ScenarioResult,
    clone,
    dbname_of,
    median,
    scratch_postgres,
    seconds_between,
    transaction_counts,
    wait_until_unused,
)
from benchmarks.processes import (
    BackendCpu,
    Process,
    cpu_seconds,
)

NAME = "baselines"
SUMMARY = "PgQueuer and Procrastinate: same no-op throughput and fan-out/fan-in emulation"

# Worker settings, chosen by trying a few (see benchmarks/README.md): PgQueuer's dequeue
# batch matches Tasker's claim batch; Procrastinate fetches one job per round trip, so its
# throughput comes from concurrent fetch loops.
LIBRARIES: dict[str, dict[str, Any]] = {
    "pgqueuer": {"arg": 100, "setting": "dequeue batch 100"},
    "procrastinate": {"arg": 50, "setting": "concurrency 50"},
}


def micro(runs: list[dict[str, Any]], key: str) -> str:
    """The median of a per-job millisecond reading, in microseconds ("?" when missing)."""
    value = median([s.get(key) for s in runs])
    return "?" if value is None else f"{value * 1000:.0f} us"


def installed(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


def drain(run: Run, library: str, url: str, workload: str, processes: int) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.baseline_{library}")
    dbname = dbname_of(url)
    wait_until_unused(dbname)
    before = transaction_counts(dbname)
    started = time.perf_counter()
    argv = [
        sys.executable,
        "-m",
        f"benchmarks.baseline_{library}",
        url,
        str(LIBRARIES[library]["arg"]),
        workload,
    ]
    with BackendCpu(dbname) as backends:
        workers = [Process(argv, run.env(url), ready_marker="ready") for _ in range(processes)]
        try:
            codes = [w.wait(300) for w in workers]
        finally:
            for worker in workers:
                worker.kill()
        wall = time.perf_counter() - started
        wait_until_unused(dbname)
    after = transaction_counts(dbname)
    worker_cpu = cpu_seconds(workers)
    readings = module.readings(url, workload)
    db_seconds = seconds_between(readings["first_started_at"], readings["last_completed_at"])
    completed = int(readings["completed"])
    if any(codes) or readings["failed"] or db_seconds is None:
        tail = "\n".join(line for w in workers for line in w.stderr[-10:])
        raise RuntimeError(f"{library} {workload}: exit codes {codes}, {readings}:\n{tail}")
    return {
        "jobs": completed,
        "db_seconds": db_seconds,
        "wall_seconds": wall,
        "jobs_per_second": completed / db_seconds if db_seconds else None,
        "wall_jobs_per_second": completed / wall,
        "commits_per_job": (after["commit"] - before["commit"]) / completed,
        "worker_cpu_ms_per_job": None if worker_cpu is None else worker_cpu * 1000 / completed,
        "postgres_cpu_ms_per_job": backends.seconds * 1000 / completed,
        "exit_codes": codes,
        "executed_per_process": [
            next((ln for ln in w.stdout if ln.startswith("executed")), None) for w in workers
        ],
    }


def measure(
    run: Run,
    library: str,
    module: Any,
    samples: dict[str, list[dict[str, Any]]],
    jobs: int,
    width: int,
    repeats: int,
) -> None:
    """Every sample on a fresh copy of a seed database (installed, and full of jobs)."""
    with contextlib.ExitStack() as stack:
        empty = stack.enter_context(scratch_postgres(f"{library}_empty"))
        asyncio.run(module.install(empty))
        full = stack.enter_context(clone(run, empty, f"{library}_seed"))
        asyncio.run(module.enqueue_noop(full, jobs))
        for _ in range(repeats):
            for processes in (1, 2):
                with clone(run, full, f"{library}_run") as url:
                    samples[f"noop.{processes}p"].append(
                        drain(run, library, url, "noop", processes)
                    )
            with clone(run, empty, f"{library}_run") as url:
                asyncio.run(module.enqueue_fan(url, width))
                samples["fan.1p"].append(drain(run, library, url, "fan", 1))


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    jobs = run.pick(2000, 40)
    width = run.pick(1000, 20)
    repeats = run.pick(3, 1)
    result.sizes = {"noop_jobs": jobs, "fan_width": width, "repeats": repeats}
    if not run.uses("postgres"):
        result.skipped = "PostgreSQL is not available (or not selected)"
        return result
    libraries = [lib for lib in LIBRARIES if installed(lib)]
    missing = [lib for lib in LIBRARIES if lib not in libraries]
    if missing:
        result.notes.append(
            f"{', '.join(missing)} not installed, so not measured "
            "(.venv/bin/pip install -r requirements-bench.lock)"
        )
    if not libraries:
        result.skipped = result.notes[-1]
        return result
    for library in libraries:
        module = importlib.import_module(f"benchmarks.baseline_{library}")
        samples: dict[str, list[dict[str, Any]]] = {"noop.1p": [], "noop.2p": [], "fan.1p": []}
        if run.smoke:
            # One database, one run of each worker mode: checks the suite, not timings.
            with scratch_postgres(f"{library}_smoke") as url:
                asyncio.run(module.install(url))
                asyncio.run(module.enqueue_noop(url, jobs))
                samples["noop.2p"].append(drain(run, library, url, "noop", 2))
                asyncio.run(module.enqueue_fan(url, width))
                samples["fan.1p"].append(drain(run, library, url, "fan", 1))
            del samples["noop.1p"]
        else:
            measure(run, library, module, samples, jobs, width, repeats)
        result.samples[library] = samples
        setting = LIBRARIES[library]["setting"]
        for processes in (1, 2):
            runs = samples.get(f"noop.{processes}p")
            if not runs:
                continue
            result.add(
                Figure(
                    NAME,
                    library,
                    f"no-op jobs/s, {processes} proc ({setting})",
                    median([s["jobs_per_second"] for s in runs]),
                    "jobs/s",
                    key=f"baselines.{library}.noop.{processes}p",
                    detail=f"wall incl. start-up "
                    f"{median([s['wall_jobs_per_second'] for s in runs]):,.0f}/s; "
                    f"{median([s['commits_per_job'] for s in runs]):.3f} commits/job; "
                    f"CPU/job: worker {micro(runs, 'worker_cpu_ms_per_job')}, "
                    f"PostgreSQL {micro(runs, 'postgres_cpu_ms_per_job')}",
                )
            )
        runs = samples["fan.1p"]
        result.add(
            Figure(
                NAME,
                library,
                f"fan-out/fan-in emulation 1->{width}->1, first start -> final done",
                median([s["db_seconds"] for s in runs]),
                "s",
                better="lower",
                key=f"baselines.{library}.fan",
                detail=f"wall incl. start-up {median([s['wall_seconds'] for s in runs]):.2f} s",
            )
        )
    return result
