"""latency: how soon work starts, with an idle worker already running.

* task created -> its first step started: single-step tasks created one at a time, a
  short gap apart (``tasks.created_at`` -> ``steps.started_at``; the creation
  transaction's own commit is inside the figure);
* parent completed -> child started: the links of a 201-step chain
  (``completed_at`` of step i -> ``started_at`` of step i+1).

The worker uses the default options (concurrency 10, batch 50, default poll interval:
1 s on PostgreSQL where NOTIFY wakes it, 0.1 s on SQLite which polls). The same-run
reference is the median round trip of a one-row UPDATE committed on the same database.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from typing import Any

import psycopg

from benchmarks.harness import (
    NAMESPACE,
    Figure,
    Probe,
    Run,
    ScenarioResult,
    chain,
    distribution,
    open_tasker,
    percentile,
    seconds_between,
    single,
    tasker_database,
    wait_for,
    write_template,
)
from benchmarks.processes import (
    start_worker,
)

NAME = "latency"
SUMMARY = "task created -> first step started; parent completed -> child started (p50/p90/p99)"

PARENT_CHILD_TARGET_MS = 5.0


def commit_round_trips(url: str, count: int) -> list[float]:
    """Seconds taken by ``count`` one-row UPDATEs, each its own committed transaction."""
    timings = []
    if url.startswith("sqlite:"):
        lite = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None, timeout=30)
        lite.execute("PRAGMA synchronous=NORMAL")  # as Tasker's SQLite store sets it
        lite.execute("CREATE TABLE IF NOT EXISTS bench_rtt (id INTEGER PRIMARY KEY, n INTEGER)")
        lite.execute("INSERT OR IGNORE INTO bench_rtt VALUES (1, 0)")
        for _ in range(count):
            started = time.perf_counter()
            lite.execute("BEGIN IMMEDIATE")
            lite.execute("UPDATE bench_rtt SET n = n + 1 WHERE id = 1")
            lite.execute("COMMIT")
            timings.append(time.perf_counter() - started)
        lite.close()
        return timings
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.bench_rtt (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO public.bench_rtt VALUES (1, 0) ON CONFLICT DO NOTHING")
        for _ in range(count):
            started = time.perf_counter()
            conn.execute("UPDATE public.bench_rtt SET n = n + 1 WHERE id = 1")
            timings.append(time.perf_counter() - started)
    return timings


def measure(run: Run, backend: str, tasks: int, links: int, gap: float) -> dict[str, Any]:
    from tasker import TaskRequest

    single_name = write_template(run, "single", single())
    chain_name = write_template(run, f"chain_{links + 1}", chain(links + 1))
    with tasker_database(run, backend, f"{NAME}_{backend}") as url:
        rtt = commit_round_trips(url, max(tasks, 50))
        worker = start_worker(run, url, concurrency=10, batch_size=50, burst=False)
        tasker = open_tasker(run, url)
        probe = Probe(url)
        try:
            worker.wait_ready()
            time.sleep(run.pick(1.0, 0.3))  # let it go idle (and open its LISTEN connection)
            ids = []
            for _ in range(tasks):
                ids.append(tasker.create_task(TaskRequest(single_name, namespace=NAMESPACE))[0])
                time.sleep(gap)
            marks = ",".join(["%s"] * len(ids))
            wait_for(
                lambda: (
                    probe.one(
                        f"SELECT count(*) AS n FROM tasker.tasks WHERE id IN ({marks})"
                        " AND status = 'complete'",
                        ids,
                    )["n"]
                    == len(ids)
                ),
                60,
                "the single-step tasks to complete",
            )
            rows = probe.rows(
                "SELECT t.created_at, s.started_at FROM tasker.tasks t"
                f" JOIN tasker.steps s ON s.task_id = t.id WHERE t.id IN ({marks})",
                ids,
            )
            to_first = [seconds_between(r["created_at"], r["started_at"]) for r in rows]
            (chain_id, _) = tasker.create_task(TaskRequest(chain_name, namespace=NAMESPACE))
            wait_for(lambda: probe.task_status(chain_id) == "complete", 120, "the chain")
            steps = probe.rows(
                "SELECT started_at, completed_at FROM tasker.steps WHERE task_id = %s"
                " ORDER BY position",
                [chain_id],
            )
            gaps = [
                seconds_between(parent["completed_at"], child["started_at"])
                for parent, child in itertools.pairwise(steps)
            ]
        finally:
            probe.close()
            tasker.close()
            worker.terminate()
    return {
        "create_to_first_start_seconds": to_first,
        "parent_to_child_seconds": gaps,
        "commit_round_trip_seconds": rtt,
    }


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    tasks = run.pick(200, 20)
    links = run.pick(200, 20)
    gap = 0.02
    result.sizes = {
        "single_step_tasks": tasks,
        "chain_links": links,
        "gap_between_creations_seconds": gap,
        "worker": "1 process, default options (concurrency 10, batch 50, default poll)",
    }
    backends = run.scenario_backends()
    if not backends:
        result.skipped = "no backend available"
        return result
    for backend in backends:
        sample = measure(run, backend, tasks, links, gap)
        result.samples[backend] = sample
        rtt_ms = (percentile(sample["commit_round_trip_seconds"], 50) or 0.0) * 1000
        for key, label in (
            ("create_to_first_start_seconds", "task created -> first step started, p50"),
            ("parent_to_child_seconds", "parent completed -> child started, p50"),
        ):
            values = [v * 1000 for v in sample[key] if v is not None]
            dist = distribution(values)
            figure = result.add(
                Figure(
                    NAME,
                    backend,
                    label,
                    dist["p50"],
                    "ms",
                    better="lower",
                    key=f"latency.{backend}.{key.split('_seconds')[0]}",
                    detail=f"p90 {dist['p90']:.1f}, p99 {dist['p99']:.1f}, n={dist['n']}",
                )
            )
            figure.ratio_to("x commit RTT", rtt_ms)
            if backend == "postgres" and key == "parent_to_child_seconds":
                figure.target = f"p50 <= {PARENT_CHILD_TARGET_MS:.0f} ms"
                figure.met = figure.value is not None and figure.value <= PARENT_CHILD_TARGET_MS
        result.add(
            Figure(
                NAME,
                backend,
                "reference: one-row UPDATE commit round trip, p50",
                rtt_ms,
                "ms",
                better="lower",
                key=f"latency.{backend}.commit_rtt",
            )
        )
    return result
