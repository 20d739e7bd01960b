"""dashboard: the two pages issue 15 puts a number on, served over HTTP in-process.

- A task of 1,000 steps (1 -> 998 -> 1, created and not run): ``GET /tasks/{id}``, the
  whole page (task, readiness, levels, history, events, the SVG graph) rendered;
  target < 1 s.
- The task list with many tasks in the database: ``GET /`` (first page and counts per
  status), ``GET /?status=complete`` and a page deep in the list (``before=`` the middle
  id: a cursor, so it costs what the first does); target < 200 ms at 1,000,000 tasks.
  The tasks are copies of one real task written by one ``INSERT ... SELECT`` (the
  column list read from the database), since creating a million through the facade
  would take the run's whole budget.

Each figure is the median of ``REPEATS`` requests after one warm-up, through Starlette's
TestClient (no network, one process), authentication off.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import (
    Figure,
    Run,
    ScenarioResult,
    create_tasks,
    fan_out_in,
    median,
    open_tasker,
    tasker_database,
    write_template,
)

NAME = "dashboard"
SUMMARY = "dashboard: a 1,000-step task page and the task list at 1,000,000 tasks, in-process"

REPEATS = 7
TASK_PAGE_TARGET_MS = 1000.0
LIST_TARGET_MS = 200.0


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    width = run.pick(998, 18)
    tasks = run.pick(1_000_000, 1_000)
    backends = run.scenario_backends()
    result.sizes = {"task_steps": width + 2, "list_tasks": tasks, "repeats": REPEATS}
    if not backends:
        result.skipped = "no backend available"
        return result
    template = write_template(run, f"dash_{width}", fan_out_in(width))
    for backend in backends:
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            (task_id,), _ = create_tasks(run, url, template, 1)
            copy_tasks(url, task_id, tasks - 1, backend)
            tasker = open_tasker(run, url)
            try:
                timings = measure(tasker, task_id)
            finally:
                tasker.close()
        for key, (label, target) in {
            "task_page": (f"task page, {width + 2} steps", TASK_PAGE_TARGET_MS),
            "list_first": (f"task list, first page, {tasks:,} tasks", LIST_TARGET_MS),
            "list_status": (f"task list, status filter, {tasks:,} tasks", LIST_TARGET_MS),
            "list_deep": (f"task list, a page deep by cursor, {tasks:,} tasks", LIST_TARGET_MS),
        }.items():
            value = median(timings[key])
            figure = result.add(
                Figure(NAME, backend, label, value, "ms", better="lower",
                       key=f"{NAME}.{backend}.{key}", target=f"< {target:.0f} ms")
            )  # fmt: skip
            figure.met = None if value is None or run.smoke else value < target
            result.samples[f"{backend}.{key}"] = timings[key]
    return result


def measure(tasker: Any, task_id: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient

    from tasker.api.app import create_app

    app = create_app(tasker, auth=False)
    timings: dict[str, list[float]] = {}
    with TestClient(app) as client:
        newest = tasker.list_tasks(limit=1)[0]["id"]
        middle = (task_id + newest) // 2
        paths = {
            "task_page": f"/tasks/{task_id}",
            "list_first": "/",
            "list_status": "/?status=pending",
            "list_deep": f"/?before={middle}",
        }
        for key, path in paths.items():
            response = client.get(path)  # warm-up; also checks the page is whole
            assert response.status_code == 200, (path, response.status_code)
            assert "</html>" in response.text
            samples = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            timings[key] = samples
    return timings


def copy_tasks(url: str, task_id: int, count: int, backend: str) -> None:
    """``count`` copies of task ``task_id`` (without steps) by one INSERT ... SELECT."""
    if count <= 0:
        return
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'tasker' AND table_name = 'tasks'"
                    " ORDER BY ordinal_position"
                )
                if row[0] not in ("id", "idempotency_key")
            ]
            names = ", ".join(columns)
            conn.execute(
                f"INSERT INTO tasker.tasks ({names}) SELECT {names}"  # names from the catalogue
                " FROM tasker.tasks, generate_series(1, %s) WHERE id = %s",
                (count, task_id),
            )
            conn.execute("ANALYZE tasker.tasks")
        return
    import sqlite3

    conn = sqlite3.connect(url[len("sqlite:///") :], timeout=60)
    try:
        columns = [
            row[1]
            for row in conn.execute("PRAGMA table_info(tasks)")
            if row[1] not in ("id", "idempotency_key")
        ]
        names = ", ".join(columns)
        with conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                f" INSERT INTO tasks ({names}) SELECT {names} FROM tasks, n WHERE id = ?",
                (count, task_id),
            )
        conn.execute("ANALYZE")
    finally:
        conn.close()
