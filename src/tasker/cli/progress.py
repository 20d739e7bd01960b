"""Progress of one task while it runs (``tasker run``, ``tasker task create --wait``).

On a terminal a Rich live table of the steps; otherwise one plain line per change, so
logs and pipes get a readable record. Both are fed the contract's task JSON.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tasker.cli.render import error_summary, state_text

TaskJson = dict[str, Any]


class TaskProgress:
    """Context manager; call :meth:`update` with the latest task JSON."""

    def __init__(self, console: Console | None, *, live: bool):
        self.console = console
        self.live = live and console is not None
        self._live: Live | None = None
        self._seen_task: str | None = None
        self._seen_steps: dict[str, tuple[str, int]] = {}

    def __enter__(self) -> TaskProgress:
        if self.live and self.console is not None:
            self._live = Live(
                Text("starting…"), console=self.console, refresh_per_second=8, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def update(self, task: TaskJson) -> None:
        if self.console is None:
            return
        if self._live is not None:
            self._live.update(render_task(task), refresh=True)
        else:
            self._print_changes(task)

    def _print_changes(self, task: TaskJson) -> None:
        assert self.console is not None
        if task["status"] != self._seen_task:
            self._seen_task = task["status"]
            done = sum(s["status"] in ("complete", "resolved_manually") for s in task["steps"])
            self.console.print(
                f"task {task['id']} {task['namespace']}/{task['name']}@{task['version']}: "
                f"{task['status']} ({done}/{len(task['steps'])} steps done)",
                markup=False,
                highlight=False,
            )
        for step in task["steps"]:
            key = (step["status"], step["attempts"])
            if self._seen_steps.get(step["name"]) == key:
                continue
            self._seen_steps[step["name"]] = key
            line = (
                f"  step {step['name']}: {step['status']} "
                f"(attempt {step['attempts']}/{step['max_attempts']})"
            )
            if step["error"] and step["status"] == "error":
                line += f" {error_summary(step['error'])}"
                if step["next_retry_at"]:
                    line += f"; next retry at {step['next_retry_at']}"
            self.console.print(line, markup=False, highlight=False)


def progress_console(json_output: bool) -> tuple[Console | None, bool]:
    """Where progress goes: a live display on a terminal, else plain lines on stdout; with
    --json stdout is kept for the document, so progress shows on a terminal's stderr only."""
    if json_output:
        return (
            (Console(stderr=True, highlight=False), True) if sys.stderr.isatty() else (None, False)
        )
    return Console(highlight=False, soft_wrap=True), sys.stdout.isatty()


def render_task(task: TaskJson) -> Group:
    steps = task.get("steps") or []
    done = sum(s["status"] in ("complete", "resolved_manually") for s in steps)
    header = Text.assemble(
        (f"task {task['id']} ", "bold"),
        f"{task['namespace']}/{task['name']}@{task['version']}  ",
        state_text(task["status"]),
        f"  {done}/{len(steps)} steps done",
    )
    table = Table("step", "state", "attempts", "detail", box=None, pad_edge=False)
    for step in steps:
        detail = ""
        if step["status"] == "error" and step["error"]:
            detail = error_summary(step["error"])
            if step["next_retry_at"]:
                detail += f" (next retry {step['next_retry_at']})"
        table.add_row(
            step["name"],
            state_text(step["status"]),
            f"{step['attempts']}/{step['max_attempts']}",
            Text(detail, style="red") if detail else "",
        )
    return Group(header, table)


def print_summary(console: Console, task: TaskJson, elapsed_seconds: float) -> None:
    """The closing lines of ``tasker run`` / ``task create --wait``."""
    steps = task.get("steps") or []
    counts: dict[str, int] = {}
    for step in steps:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    breakdown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    console.print(
        Text.assemble(
            f"task {task['id']} ",
            state_text(task["status"]),
            f" in {elapsed_seconds:.2f}s: {len(steps)} steps ({breakdown})",
        )
    )
    for step in steps:
        if step["status"] == "error" and step["error"]:
            console.print(
                Text.assemble(f"  {step['name']}: ", (error_summary(step["error"]), "red"))
            )
