"""``tasker demo``: the bundled example workflows, run end to end on an embedded database.

Nothing is faked: a real worker (the one ``tasker worker`` runs) claims the steps from
a SQLite file, retries the flaky payment with real backoff (0.1 s base, so it takes
well under a second) and finalizes each task; the live view reads the database. One
expense waits for its manager's signal, which the demo sends after a moment, as a
person would with ``tasker task signal``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tasker.clock import SystemClock, parse_utc
from tasker.config import Settings
from tasker.definitions import TemplateRegistry
from tasker.engine.creation import TaskRequest
from tasker.examples import TEMPLATES_DIRECTORY
from tasker.facade import Tasker
from tasker.runtime.worker import Worker, WorkerOptions
from tasker.states import SETTLED

DEFAULT_DIRECTORY = Path(".tasker-demo")
DATABASE_FILE = "tasker.db"
WORK_SECONDS = 0.25  # what each example step "works", so the live view has time to show it
REFRESH_SECONDS = 0.1
DEADLINE_SECONDS = 60.0
SIGNAL_DELAY_SECONDS = 0.5  # how long the approval visibly waits before the demo signals

STYLES = {
    "pending": "dim",
    "in_progress": "bold yellow",
    "complete": "green",
    "error": "bold red",
    "cancelled": "magenta",
    "resolved_manually": "cyan",
    "skipped": "dim",
}


@dataclass(frozen=True)
class Example:
    """One bundled workflow, the context it runs with and what it shows."""

    title: str
    name: str
    context: dict[str, Any]
    expected_status: str
    shows: str
    # Sent as the signal `approval` once the task waits for it (None: never sent).
    approval: dict[str, Any] | None = None


EXAMPLES = (
    Example(
        "E-commerce order",
        "ecommerce_order",
        {
            "order_id": 1001,
            "customer": "ada@example.com",
            "items": [
                {"sku": "KB-01", "quantity": 1, "unit_price_cents": 8900},
                {"sku": "MS-02", "quantity": 2, "unit_price_cents": 2450},
            ],
        },
        "complete",
        "a flaky payment gateway, retried with backoff",
    ),
    Example(
        "Data pipeline",
        "data_pipeline",
        {"source": "s3://demo/exports/2026-01-01.csv", "rows": 120_000},
        "complete",
        "fan-out to 4 parallel transforms, fan-in to load",
    ),
    Example(
        "Expense approval",
        "expense_approval",
        {"request_id": 76, "employee": "alan@example.com", "amount_cents": 42_000},
        "complete",
        "a step that waits for a manager's signal",
        approval={"approved": True, "by": "ann@example.com"},
    ),
    Example(
        "Expense over the limit",
        "expense_approval",
        {"request_id": 77, "employee": "grace@example.com", "amount_cents": 2_500_000},
        "error",
        "a permanent failure: no retries, later steps never run",
    ),
)


def run_demo(directory: Path | None = None) -> int:
    """Run the example workflows (four tasks of three templates) in ``directory``
    (default ``./.tasker-demo``, its database recreated each run). Returns 0 when each
    ended as designed, else 1."""
    directory = directory if directory is not None else DEFAULT_DIRECTORY
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=100)  # no terminal: wide enough, no wrapping
    url = _fresh_database_url(directory)
    started = time.monotonic()
    with Tasker.open(
        url,
        migrate=True,
        registry=TemplateRegistry.from_paths([str(TEMPLATES_DIRECTORY)]),
        clock=SystemClock(),
        settings=Settings(database_url=url, lease_seconds=10.0),
    ) as app:
        console.print(
            f"[bold]Tasker demo[/bold]: three workflows on the embedded database {url}\n"
            "One worker (the same code as `tasker worker`) runs their steps concurrently.\n"
        )
        task_ids = [
            app.create_task(
                TaskRequest(
                    example.name,
                    {**example.context, "work_seconds": WORK_SECONDS},
                    namespace="examples",
                    initiator="tasker demo",
                )
            )[0]
            for example in EXAMPLES
        ]
        _run_with_live_view(app, task_ids, console)
        tasks = [app.get_task(task_id) for task_id in task_ids]
        durations = [_duration_seconds(app, task) for task in tasks]
    console.print(_summary(tasks, durations))
    ok = _print_outcomes(console, tasks)
    console.print(f"\nDone in {time.monotonic() - started:.1f} s.")
    _print_next_steps(console, url, task_ids[0])
    return 0 if ok else 1


def _fresh_database_url(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (directory / f"{DATABASE_FILE}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{(directory / DATABASE_FILE).as_posix()}"


def _run_with_live_view(app: Tasker, task_ids: list[int], console: Console) -> None:
    worker = Worker(
        app,
        WorkerOptions(concurrency=8, poll_interval_seconds=0.02, grace_seconds=5.0),
        worker_id="tasker-demo",
    )
    failure: list[BaseException] = []

    def work() -> None:
        try:
            worker.run_sync()
        except BaseException as exc:  # reported below, in the main thread
            failure.append(exc)

    thread = threading.Thread(target=work, name="tasker-demo-worker", daemon=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    approvals = {
        task_id: example.approval
        for example, task_id in zip(EXAMPLES, task_ids, strict=True)
        if example.approval is not None
    }
    waiting_since: dict[int, float] = {}
    sent: list[str] = []
    with Live(_progress(app, task_ids), console=console, auto_refresh=False) as live:
        thread.start()
        while thread.is_alive():
            if time.monotonic() > deadline or all(
                app.task_status(task_id) in SETTLED for task_id in task_ids
            ):
                worker.stop()
            for task_id in list(approvals):
                if _waits_for_approval(app, task_id):
                    since = waiting_since.setdefault(task_id, time.monotonic())
                    if time.monotonic() - since >= SIGNAL_DELAY_SECONDS:
                        payload = approvals.pop(task_id)
                        app.signal_task(task_id, "approval", payload, actor="tasker demo")
                        sent.append(
                            f"Sent the signal approval {json.dumps(payload)} to task {task_id}, "
                            f"which had waited {time.monotonic() - since:.1f} s for it "
                            f"(as: tasker task signal {task_id} approval --payload '...')"
                        )
            live.update(_progress(app, task_ids), refresh=True)
            thread.join(REFRESH_SECONDS)
        live.update(_progress(app, task_ids), refresh=True)
    for line in sent:
        console.print(f"\n{line}", markup=False, soft_wrap=True)
    if failure:
        raise failure[0]


def _waits_for_approval(app: Tasker, task_id: int) -> bool:
    return any(row.blocking_reason == "waiting_for_signal" for row in app.readiness(task_id))


def _progress(app: Tasker, task_ids: list[int]) -> Table:
    table = Table(title="Steps", title_justify="left", expand=False)
    table.add_column("Workflow")
    table.add_column("Step")
    table.add_column("State")
    table.add_column("Attempts", justify="right")
    for example, task_id in zip(EXAMPLES, task_ids, strict=True):
        task = app.get_task(task_id)
        for index, step in enumerate(task["steps"]):
            label = f"#{task_id} {example.title}" if index == 0 else ""
            table.add_row(
                label,
                step["name"],
                _state_text(step),
                f"{step['attempts']}/{step['max_attempts']}",
            )
        table.add_section()
    return table


def _state_text(step: dict[str, Any]) -> Text:
    status = step["status"]
    if status == "error" and step["next_retry_at"]:
        label = "error, retry scheduled"
    elif status == "error":
        error = step["error"] or {}
        label = f"failed: {error.get('class')}"
    elif status == "in_progress":
        label = "running"
    elif status == "pending" and step["attempts"] == 0:
        label = "pending"
    else:
        label = status
    return Text(label, style=STYLES.get(status, ""))


def _summary(tasks: list[dict[str, Any]], durations: list[float]) -> Table:
    table = Table(title="\nSummary", title_justify="left")
    table.add_column("Task")
    table.add_column("Status")
    table.add_column("Steps")
    table.add_column("Attempts", justify="right")
    table.add_column("Duration", justify="right")
    for task, duration in zip(tasks, durations, strict=True):
        steps = task["steps"]
        done = sum(1 for s in steps if s["status"] == "complete")
        failed = sum(1 for s in steps if s["status"] == "error")
        # A map group runs nothing itself: only its instances do.
        not_run = sum(1 for s in steps if s["attempts"] == 0 and s["map"] is None)
        parts = [f"{done}/{len(steps)} complete"]
        if failed:
            parts.append(f"{failed} failed")
        if not_run:
            parts.append(f"{not_run} not run")
        table.add_row(
            f"#{task['id']} {task['name']}",
            Text(task["status"], style=STYLES.get(task["status"], "")),
            ", ".join(parts),
            str(sum(s["attempts"] for s in steps)),
            f"{duration:.2f} s",
        )
    return table


def _print_outcomes(console: Console, tasks: list[dict[str, Any]]) -> bool:
    console.print("\nWhat happened:")
    ok = True
    for example, task in zip(EXAMPLES, tasks, strict=True):
        status = task["status"]
        ok = ok and status == example.expected_status
        steps = {s["name"]: s for s in task["steps"]}
        if example.name == "ecommerce_order":
            detail = (
                f"the payment gateway failed {steps['charge']['attempts'] - 1} times; "
                f"charge succeeded on attempt {steps['charge']['attempts']}"
            )
        elif example.name == "data_pipeline":
            loaded = (steps["load"]["results"] or {}).get("loaded_rows")
            count = (steps["transform"]["instances"] or {}).get("total")
            detail = (
                f"extract found {count} data sets, one transform ran per data set in "
                f"parallel (a map); {loaded} rows loaded"
            )
        elif example.approval is not None:
            approval = steps["manager_approval"]
            detail = (
                f"manager_approval waited for the signal approval, then ran with it: "
                f"approved by {(approval['results'] or {}).get('approved_by')}"
            )
        else:
            failed = next((s for s in task["steps"] if s["status"] == "error"), None)
            error = (failed or {}).get("error") or {}
            never = [s["name"] for s in task["steps"] if s["attempts"] == 0]
            detail = (
                f"{(failed or {}).get('name')} failed permanently after "
                f"{(failed or {}).get('attempts')} attempt ({error.get('class')}: "
                f"{error.get('message')}); never ran: {', '.join(never)}"
            )
        mark = "ok" if status == example.expected_status else "UNEXPECTED"
        console.print(
            f"  [{mark}] {example.title} ({example.name}): {status} - {detail}",
            markup=False,
            soft_wrap=True,
        )
    return ok


def _print_next_steps(console: Console, url: str, first_task_id: int) -> None:
    env = f"TASKER_DATABASE_URL={url}"
    console.print(
        "\nNext, look around (the database is kept until the next demo):\n"
        f"  {env} tasker task show {first_task_id}\n"
        f"  {env} tasker task list\n"
        f"  {env} tasker events tail\n"
        f"  {env} tasker serve      # then open http://127.0.0.1:8000/ (the dashboard)\n",
        markup=False,
        soft_wrap=True,
    )


def _duration_seconds(app: Tasker, task: dict[str, Any]) -> float:
    """From the task's creation to its last state change."""
    history = [t for t in app.transitions(task["id"]) if t["entity"] == "task"]
    if not history:
        return 0.0
    return (parse_utc(history[-1]["created_at"]) - parse_utc(task["created_at"])).total_seconds()
