"""priority_claim: the claim with 1,000,000 ready steps at mixed priorities (issue 14).

One real task is created through the facade; its step is then copied by one
``INSERT ... SELECT`` into 1,000,000 claimable steps with priorities -5..5 and claimable
times spread over the hour before (creating a million tasks through the facade would take
the run's whole budget; the claim reads only the steps table). The figure is the claim as
a worker makes it, through ``Tasker.claim`` (the transaction, the history rows and
events of each claimed step, the task context and parent results included): median ms
per claim of 1 step and of 50, after one warm-up. Each claim is checked to take the
highest priority left, and the plan to read ``steps_claim_priority_idx`` in order (no
sort, no scan of the table).
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
    median,
    open_tasker,
    single,
    tasker_database,
    write_template,
)

NAME = "priority_claim"
SUMMARY = "priority_claim: claim latency with 1,000,000 ready steps at mixed priorities"

PRIORITIES = 11  # -5..5
BATCH = 50


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    ready = run.pick(1_000_000, 2_000)
    repeats = run.pick(51, 5)
    backends = run.scenario_backends()
    result.sizes = {"ready_steps": ready, "priorities": PRIORITIES, "repeats": repeats}
    if not backends:
        result.skipped = "no backend available"
        return result
    template = write_template(run, "prio_seed", single())
    for backend in backends:
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            (task_id,), _ = create_tasks(run, url, template, 1)
            seeded = time.perf_counter()
            copy_steps(url, task_id, ready - 1, backend)
            result.notes.append(
                f"{backend}: {ready:,} ready steps seeded in {time.perf_counter() - seeded:.1f} s"
            )
            with Probe(url) as probe:
                plan = claim_plan(probe)
            assert "steps_claim_priority_idx" in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            result.notes.append(f"{backend} plan: {' / '.join(plan.splitlines()[:4])}")
            tasker = open_tasker(run, url)
            try:
                timings = measure(tasker, url, repeats)
            finally:
                tasker.close()
        for key, label in {
            "claim_1": f"claim 1 step, {ready:,} ready at {PRIORITIES} priorities",
            f"claim_{BATCH}": f"claim {BATCH} steps, {ready:,} ready at {PRIORITIES} priorities",
        }.items():
            value = median(timings[key])
            result.add(
                Figure(NAME, backend, label, value, "ms", better="lower",
                       key=f"{NAME}.{backend}.{key}")
            )  # fmt: skip
            result.samples[f"{backend}.{key}"] = timings[key]
    return result


def measure(tasker: Any, url: str, repeats: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    with Probe(url) as probe:
        for key, size in (("claim_1", 1), (f"claim_{BATCH}", BATCH)):
            tasker.claim("bench", size, lease_seconds=3600)  # warm-up
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                claimed = tasker.claim("bench", size, lease_seconds=3600)
                samples.append((time.perf_counter() - started) * 1000)
                assert len(claimed) == size
                # The highest priorities went first: nothing left outranks what was claimed.
                ids = ",".join(str(c.step_id) for c in claimed)
                got = probe.one(f"SELECT min(priority) AS p FROM tasker.steps WHERE id IN ({ids})")
                left = probe.one(
                    "SELECT max(priority) AS p FROM tasker.steps WHERE claimable_at IS NOT NULL"
                )
                assert left["p"] <= got["p"], (got, left)
            timings[key] = samples
    return timings


def claim_plan(probe: Probe) -> str:
    """The plan of the claim's row selection (the named query's inner SELECT)."""
    select = (
        "SELECT id FROM tasker.steps WHERE claimable_at <= {now}"
        " ORDER BY priority DESC, claimable_at, id LIMIT 50"
    )
    if probe.sqlite:
        now = "strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now')"
        rows = probe.rows("EXPLAIN QUERY PLAN " + select.format(now=now))
        return "\n".join(str(r["detail"]) for r in rows)
    rows = probe.rows("EXPLAIN " + select.format(now="now()") + " FOR UPDATE SKIP LOCKED")
    return "\n".join(str(r["QUERY PLAN"]) for r in rows)


def copy_steps(url: str, task_id: int, count: int, backend: str) -> None:
    """``count`` claimable copies of the task's one step, priorities -5..5 spread evenly
    and claimable times over the hour before it, by one INSERT ... SELECT."""
    if count <= 0:
        return
    varied = ("id", "name", "priority", "claimable_at", "ready_at")
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'tasker' AND table_name = 'steps'"
                    " ORDER BY ordinal_position"
                )
                if row[0] not in varied
            ]
            names = ", ".join(columns)
            conn.execute(
                f"INSERT INTO tasker.steps ({names}, name, priority, claimable_at, ready_at)"
                f" SELECT {names}, s.name || '_' || g, (g::bigint * 7919) %% {PRIORITIES} - 5,"
                " s.claimable_at - make_interval(secs => g %% 3600),"
                " s.claimable_at - make_interval(secs => g %% 3600)"
                " FROM tasker.steps s, generate_series(1, %s) g WHERE s.task_id = %s",
                (count, task_id),
            )
            conn.execute(
                "UPDATE tasker.tasks SET total_steps = %s WHERE id = %s", (count + 1, task_id)
            )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE tasker.steps")
        return
    import sqlite3

    conn = sqlite3.connect(url[len("sqlite:///") :], timeout=60)
    try:
        columns = [
            row[1] for row in conn.execute("PRAGMA table_info(steps)") if row[1] not in varied
        ]
        names = ", ".join(columns)
        earlier = "strftime('%Y-%m-%dT%H:%M:%S', s.claimable_at, '-' || (n.i % 3600) || ' seconds')"
        with conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                f" INSERT INTO steps ({names}, name, priority, claimable_at, ready_at)"
                f" SELECT {names}, s.name || '_' || n.i, (n.i * 7919) % {PRIORITIES} - 5,"
                f" {earlier} || '.000000Z', {earlier} || '.000000Z'"
                " FROM steps s, n WHERE s.task_id = ?",
                (count, task_id),
            )
            conn.execute("UPDATE tasks SET total_steps = ? WHERE id = ?", (count + 1, task_id))
        conn.execute("ANALYZE")
    finally:
        conn.close()
