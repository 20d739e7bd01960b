"""history_scale: the hot path with millions of finished steps in the database (issue 16).

The same measurements on two PostgreSQL databases alike but for finished history (tasks
of 10 chained steps, complete, with their edges, state transitions and events) added to
one, VACUUM ANALYZE on both, in rounds that alternate between them. The history is copies of
one task run to completion through the facade, written by one ``INSERT ... SELECT`` per
table (ids offset per copy, column lists read from the catalogue): creating and running
a million tasks through the engine would take hours on this machine.

Measured (median of ``REPEATS``, over ``ROUNDS`` rounds of each database, after a
warm-up in each round):

- ``claim``: ``Tasker.claim`` of 50 ready steps and ``Tasker.record`` of their 50
  outcomes, as a worker makes them (history rows, events, finalization included);
- ``readiness``: ``Tasker.readiness`` of a live 10-step task;
- ``GET /v1/tasks`` (first page) and ``GET /v1/tasks?status=pending``, in-process;
- ``events tail``: ``Tasker.event_page`` of the newest 100 events, and of one task's;
- ``prune``: ``Tasker.prune_tasks`` of finished tasks with 1,000,000 rows in all (tasks,
  steps, edges, transitions, events), timed, while another thread runs claim and record
  cycles: their latency during the prune against before it. Twice, on different tasks,
  each after a ``CHECKPOINT``: as shipped (back to back), then paced at ``PACED``.

PostgreSQL only (SQLite is the embedded single-machine default; its history grows with
what one machine runs). Smoke: 2,000 finished steps, each prune half of them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.harness import (
    NAMESPACE,
    Figure,
    Run,
    ScenarioResult,
    chain,
    create_tasks,
    median,
    open_tasker,
    percentile,
    tasker_database,
    write_template,
)

NAME = "history_scale"
SUMMARY = "history_scale: claim, readiness, task list, events tail with 10M finished steps"

CHAIN = 10  # steps per finished task
REPEATS = 21
ROUNDS = 3  # the repeats are split into rounds, alternating the empty and the full database
BATCH = 50
FLAT = 1.2  # issue 16: within 20 % of the empty database
PRUNE_ROWS = 1_000_000
PACED = 0.5  # the second prune rests as long as each batch took
CYCLES_DURING_PRUNE = 300  # ready work for the cycles beside the prune (20 before it)


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    finished_steps = run.pick(10_000_000, 2_000)
    repeats = run.pick(REPEATS, 4)
    rounds = run.pick(ROUNDS, 2)
    copies = finished_steps // CHAIN
    result.sizes = {
        "finished_steps": copies * CHAIN,
        "finished_tasks": copies,
        "steps_per_task": CHAIN,
        "repeats": repeats,
        "rounds": rounds,
        "claim_batch": BATCH,
        "prune_rows": run.pick(PRUNE_ROWS, None),
    }
    if "postgres" not in run.scenario_backends(("postgres",)):
        result.skipped = "PostgreSQL not available"
        return result
    single = write_template(run, "history_single", chain(1))
    live = write_template(run, "history_chain", chain(CHAIN))
    with contextlib.ExitStack() as stack:
        url, empty_url = (
            stack.enter_context(tasker_database(run, "postgres", name))
            for name in (NAME, f"{NAME}_empty")
        )
        tasker, empty_tasker = (open_tasker(run, u) for u in (url, empty_url))
        stack.callback(tasker.close)
        stack.callback(empty_tasker.close)
        finished, active = live_tasks(run, url, live)
        assert live_tasks(run, empty_url, live) == (finished, active)
        seeded = time.perf_counter()
        rows = copy_history(url, finished, copies - 1)
        result.notes.append(
            f"{copies * CHAIN:,} finished steps ({sum(rows.values()):,} rows: "
            + ", ".join(f"{t} {n:,}" for t, n in rows.items())
            + f") seeded in {time.perf_counter() - seeded:.0f} s"
        )
        vacuum(url)
        vacuum(empty_url)
        # Rounds alternate between the two databases, so a machine whose speed drifts
        # (it did, by 2x within a day) weighs on both halves alike.
        empty: dict[str, list[float]] = {}
        full: dict[str, list[float]] = {}
        for _ in range(rounds):
            for into, on in ((empty, empty_tasker), (full, tasker)):
                for key, samples in measure(on, single, active, repeats // rounds).items():
                    into.setdefault(key, []).extend(samples)
        victims = prune_victims(rows, copies, run.smoke)
        shipped = measure_prune(tasker, url, single, rows, copies, victims)
        paced = measure_prune(tasker, url, single, rows, copies, victims, pace=PACED)
    label = f"{copies * CHAIN:,} finished steps"
    for key, what in {
        "claim": f"claim {BATCH} steps (+ history, events)",
        "record": f"record {BATCH} outcomes (+ history, events, finalization)",
        "readiness": f"readiness of a live {CHAIN}-step task",
        "list_first": "GET /v1/tasks, first page",
        "list_status": "GET /v1/tasks?status=pending",
        "events_tail": "events tail, newest 100",
        "events_task": "events of one task",
    }.items():
        without, with_history = median(empty[key]), median(full[key])
        figure = result.add(
            Figure(NAME, "postgres", f"{what}, with {label}", with_history, "ms",
                   better="lower", key=f"{NAME}.postgres.{key}")
        )  # fmt: skip
        figure.ratio_to("x empty database", without)
        figure.detail = f"empty database {without:.2f} ms"
        figure.target = f"<= {FLAT:.1f} x empty"
        ratio = figure.ratios.get("x empty database")
        figure.met = None if run.smoke or ratio is None else ratio <= FLAT
        result.samples[f"empty.{key}"] = empty[key]
        result.samples[f"history.{key}"] = full[key]
    from tasker.engine.retention import DEFAULT_PACE

    # The prune as shipped, then paced at PACED, on the same history.
    for prune, how, suffix in (
        (shipped, f"pace {DEFAULT_PACE:g} (the default)", ""),
        (paced, f"pace {PACED:g}", "_paced"),
    ):
        report_prune(result, prune, how, suffix)
    ratio = percentile(paced["cycle_ms_during"], 99) / percentile(shipped["cycle_ms_during"], 99)
    result.notes.append(
        f"pacing the prune at {PACED:g}: cycle p99 during it {ratio:.2f} x the p99 during the"
        f" same prune at pace {DEFAULT_PACE:g}; it took {paced['seconds']:.2f} s against"
        f" {shipped['seconds']:.2f} s"
    )
    return result


def report_prune(result: ScenarioResult, prune: dict[str, Any], how: str, suffix: str) -> None:
    """The figures and the notes of one measured prune."""
    result.samples[f"prune{suffix}"] = prune
    during, before = prune["cycle_ms_during"], prune["cycle_ms_before"]
    figure = result.add(
        Figure(NAME, "postgres", f"prune {prune['rows']:,} rows of finished tasks, {how}",
               prune["seconds"], "s", better="lower", key=f"{NAME}.postgres.prune{suffix}")
    )  # fmt: skip
    figure.detail = (
        f"{prune['rows'] / prune['seconds']:,.0f} rows/s; claim+record cycle during it "
        f"p50 {percentile(during, 50):.1f} / p99 {percentile(during, 99):.1f} / max "
        f"{max(during):.1f} ms over {len(during)} cycles, before it p50 "
        f"{percentile(before, 50):.1f} / p99 {percentile(before, 99):.1f} ms"
    )
    result.notes.append(
        f"during the prune {how} ({prune['checkpoints_during']} checkpoints): the prune's "
        f"session waited on {top(prune['waits_prune'])}; the cycles' on "
        f"{top(prune['waits_cycles'])}; in the {prune['slow_cycles']} cycles over twice the "
        f"median before, on {top(prune['waits_slow_cycles'])} (samples every 5 ms)"
    )
    stall = result.add(
        Figure(NAME, "postgres", f"claim+record cycle p99 during a prune, {how}",
               percentile(during, 99), "ms", better="lower",
               key=f"{NAME}.postgres.prune_cycle_p99{suffix}")
    )  # fmt: skip
    stall.ratio_to("x before the prune", percentile(before, 99))


def top(waits: dict[str, int], n: int = 4) -> str:
    return ", ".join(f"{wait} {count}" for wait, count in list(waits.items())[:n]) or "nothing"


def live_tasks(run: Run, url: str, template: str) -> tuple[int, int]:
    """A task of ``template`` run to completion (the one the history copies) and one left
    live (the one readiness reads): their ids."""
    from tasker.runtime.runner import run_until_final

    (finished,), _ = create_tasks(run, url, template, 1)
    tasker = open_tasker(run, url)
    try:
        assert run_until_final(tasker, finished) == "complete"
    finally:
        tasker.close()
    (active,), _ = create_tasks(run, url, template, 1)
    return finished, active


def measure(tasker: Any, single: str, active: int, repeats: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from tasker.api.app import create_app

    ready(tasker, single, (repeats + 1) * BATCH)
    timings: dict[str, list[float]] = {"claim": [], "record": []}
    for i in range(repeats + 1):
        claim_ms, record_ms = cycle(tasker)
        if i:  # the first is the warm-up
            timings["claim"].append(claim_ms)
            timings["record"].append(record_ms)
    timings["readiness"] = timed(repeats, lambda: tasker.readiness(active))
    last = tasker.last_event_id()
    timings["events_tail"] = timed(repeats, lambda: tasker.event_page(last - 100, limit=100))
    timings["events_task"] = timed(repeats, lambda: tasker.event_page(0, task_id=active))
    with TestClient(create_app(tasker, auth=False)) as client:
        for key, path in (("list_first", "/v1/tasks"), ("list_status", "/v1/tasks?status=pending")):

            def get(path: str = path) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.text[:200])

            timings[key] = timed(repeats, get)
    return timings


def ready(tasker: Any, template: str, count: int) -> None:
    """``count`` ready one-step tasks, created in one call."""
    from tasker import TaskRequest

    results = tasker.create_tasks([TaskRequest(template, namespace=NAMESPACE)] * count)
    assert all(r.error is None for r in results), [r.error for r in results if r.error][:3]


def cycle(tasker: Any) -> tuple[float, float]:
    """One claim of ``BATCH`` steps and the record of their outcomes: ms each."""
    from tasker.engine.attempts import Outcome

    started = time.perf_counter()
    claimed = tasker.claim("history-bench", BATCH, lease_seconds=3600)
    claimed_at = time.perf_counter()
    if len(claimed) < BATCH:
        raise OutOfWork(f"claimed {len(claimed)} of {BATCH}")
    report = tasker.record(
        [Outcome(c.step_id, c.task_id, c.claim_token, results={"ok": True}) for c in claimed]
    )
    assert len(report.recorded) == BATCH
    return (claimed_at - started) * 1000, (time.perf_counter() - claimed_at) * 1000


class OutOfWork(Exception):
    """Fewer ready steps were left than a cycle claims."""


def timed(repeats: int, action: Any) -> list[float]:
    action()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def prune_victims(rows: dict[str, int], copies: int, smoke: bool) -> int:
    """How many finished copies one measured prune deletes: about PRUNE_ROWS rows (half of
    the copies in a smoke run), so that two prunes fit in the history."""
    per_task = sum(rows.values()) / max(1, copies - 1)
    half = max(1, (copies - 1) // 2)
    return half if smoke else min(half, int(PRUNE_ROWS / per_task))


def measure_prune(
    tasker: Any,
    url: str,
    single: str,
    rows: dict[str, int],
    copies: int,
    victims: int,
    pace: float | None = None,
) -> dict[str, Any]:
    """Prune the ``victims`` oldest finished copies at ``pace`` (None: the default) while
    another thread runs claim and record cycles; their latency before and during the
    prune, and what the database sessions waited on meanwhile (sampled every few ms)."""
    from tasker.engine.retention import DEFAULT_PACE

    per_task = sum(rows.values()) / max(1, copies - 1)
    cutoff = mark_oldest_finished(url, victims)
    checkpoint(url)  # each measured prune starts from a checkpoint, its full-page images too
    ready(tasker, single, CYCLES_DURING_PRUNE * BATCH)
    before = [sum(cycle(tasker)) for _ in range(20)]
    during: list[tuple[float, float]] = []  # (start, end) of each cycle, perf_counter
    waits: list[tuple[float, str, str]] = []  # (when, whose, wait event)
    done = threading.Event()

    def cycles() -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                cycle(tasker)
            except OutOfWork:
                return  # the prune outlasted the work made for it: `during` says how long
            during.append((started, time.perf_counter()))
            time.sleep(0.01)

    threads = [
        threading.Thread(target=cycles, name="cycles"),
        threading.Thread(target=sample_waits, args=(url, done, waits), name="waits"),
    ]
    checkpoints = checkpoint_count(url)
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        pruned = tasker.prune_tasks(cutoff, **({} if pace is None else {"pace": pace}))
    finally:
        seconds = time.perf_counter() - started
        done.set()
        for thread in threads:
            thread.join()
    assert pruned == victims, (pruned, victims)
    cycle_ms = [(end - start) * 1000 for start, end in during]
    slow = [(a, b) for a, b in during if (b - a) * 1000 > 2 * median(before)]
    return {
        "tasks": pruned,
        "pace": pace or DEFAULT_PACE,
        "rows": round(pruned * per_task),
        "seconds": seconds,
        "cycle_ms_before": before,
        "cycle_ms_during": cycle_ms,
        "checkpoints_during": checkpoint_count(url) - checkpoints,
        "waits_prune": tally(w for _, whose, w in waits if whose == "prune"),
        "waits_cycles": tally(w for _, whose, w in waits if whose == "cycle"),
        # what the cycle's sessions waited on inside the cycles over twice the median
        "waits_slow_cycles": tally(
            w for t, whose, w in waits if whose == "cycle" and any(a <= t <= b for a, b in slow)
        ),
        "slow_cycles": len(slow),
    }


# A session is the prune's when it runs one of the prune's statements (retention.py).
WAITS = """
SELECT CASE WHEN query LIKE 'DELETE FROM tasker.events WHERE task_id%'
              OR query LIKE 'DELETE FROM tasker.tasks WHERE id%'
              OR query LIKE 'SELECT id FROM tasker.tasks%completed_at <%'
            THEN 'prune' ELSE 'cycle' END AS whose,
       coalesce(wait_event_type || ':' || wait_event, 'no wait (CPU)') AS wait
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
  AND backend_type = 'client backend'
"""


def sample_waits(url: str, done: threading.Event, into: list[tuple[float, str, str]]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while not done.is_set():
            now = time.perf_counter()
            into.extend((now, whose, wait) for whose, wait in conn.execute(WAITS))
            time.sleep(0.005)


def checkpoint(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def checkpoint_count(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.info.server_version >= 170000:  # the counters moved in PostgreSQL 17
            sql = "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
        else:
            sql = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def tally(waits: Any) -> dict[str, int]:
    """How often each wait event was seen, most often first."""
    counts: dict[str, int] = {}
    for wait in waits:
        counts[wait] = counts.get(wait, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# -- seeding ---------------------------------------------------------------------------


def vacuum(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def columns(conn: Any, table: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'tasker' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def next_id(conn: Any, table: str) -> int:
    row = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM tasker.{table}").fetchone()
    return int(row[0])


def copy_history(url: str, task_id: int, count: int) -> dict[str, int]:
    """``count`` copies of finished task ``task_id`` with its steps, edges, transitions and
    events, one INSERT ... SELECT per table. Copy g's ids are the original's plus g times
    the span of that table's ids, so every reference stays inside its copy; the sequences
    and the event log position move past the copies. Rows written, per table."""
    import psycopg

    written: dict[str, int] = {}
    if count <= 0:
        return written
    with psycopg.connect(url) as conn:
        span = {table: next_id(conn, table) for table in
                 ("tasks", "steps", "step_transitions", "task_transitions", "events")}  # fmt: skip
        shifted = {
            "task_id": f"task_id + g * {span['tasks']}",
            "step_id": f"step_id + g * {span['steps']}",
            "from_step_id": f"from_step_id + g * {span['steps']}",
            "to_step_id": f"to_step_id + g * {span['steps']}",
        }
        plans: dict[str, dict[str, str]] = {
            "tasks": {"id": f"id + g * {span['tasks']}", "idempotency_key": "NULL"},
            "steps": {"id": f"id + g * {span['steps']}"},
            "step_edges": {},
            "step_transitions": {"id": f"id + g * {span['step_transitions']}"},
            "task_transitions": {"id": f"id + g * {span['task_transitions']}"},
            "events": {"id": f"id + g * {span['events']}"},
        }
        owner = {"tasks": "id"}
        for table, overrides in plans.items():
            names = columns(conn, table)
            values = [overrides.get(n, shifted.get(n, n)) for n in names]
            key = owner.get(table, "task_id")
            cursor = conn.execute(
                f"INSERT INTO tasker.{table} ({', '.join(names)})"  # names from the catalogue
                f" SELECT {', '.join(values)} FROM tasker.{table}, generate_series(1::bigint, %s) g"
                f" WHERE {key} = %s",
                (count, task_id),
            )
            written[table] = cursor.rowcount
        for table in ("tasks", "steps", "step_transitions", "task_transitions"):
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM "
                f"tasker.{table}))",
                (f"tasker.{table}",),
            )
        conn.execute(
            "UPDATE tasker.event_log_position SET last = (SELECT max(id) FROM tasker.events)"
        )
    return written


def mark_oldest_finished(url: str, victims: int) -> datetime:
    """Date the ``victims`` oldest copies as finished a year ago; the cutoff to prune them."""
    import psycopg

    long_ago = datetime.now(UTC) - timedelta(days=365)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE tasker.tasks SET completed_at = %s WHERE id IN (SELECT id FROM tasker.tasks"
            " WHERE status = 'complete' AND total_steps = %s ORDER BY id OFFSET 1 LIMIT %s)",
            (long_ago, CHAIN, victims),
        )
    return long_ago + timedelta(days=1)
