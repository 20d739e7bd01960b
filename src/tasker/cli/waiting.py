"""``tasker task create --wait``: follow a task to a final state, for at most a timeout,
after saying on stderr when no live worker could run it (it would otherwise wait forever)."""

from __future__ import annotations

import time
from typing import Any

from tasker.cli import common
from tasker.definitions import TemplateDefinition
from tasker.facade import Tasker
from tasker.states import SETTLED

WAIT_POLL_SECONDS = 0.25  # one cheap read per poll; short enough to feel immediate


def unserved_hint(tasker: Tasker, template: TemplateDefinition) -> str | None:
    """Why no step of ``template`` may ever run as things stand, or None: no live worker at
    all, or handlers that no live worker serves in its namespace (named)."""
    workers = tasker.live_workers()
    if not workers:
        return (
            "hint: no live worker: start `tasker worker` with this template in"
            " TASKER_TEMPLATES, or use `tasker run` to run the task here"
        )
    handlers = sorted({spec.handler for spec in template.steps if spec.handler})
    unserved = [
        handler
        for handler in handlers
        if not any(worker.serves(template.namespace, handler) for worker in workers)
    ]
    if not unserved:
        return None
    return (
        f"hint: no live worker serves {template.key}'s handler(s) {', '.join(unserved)}:"
        " start a worker that can import them"
    )


def wait_for_final(
    tasker: Tasker, task_id: int, *, json_output: bool, timeout_seconds: float | None
) -> dict[str, Any] | None:
    """Poll until the task is final, showing progress; returns the final task JSON, or
    None when ``timeout_seconds`` passed first (the task goes on; nothing is cancelled)."""
    from tasker.cli.progress import TaskProgress, print_summary, progress_console

    console, live = progress_console(json_output)
    started = time.monotonic()
    deadline = None if timeout_seconds is None else started + timeout_seconds
    with TaskProgress(console, live=live) as progress:
        while True:
            task = tasker.get_task(task_id)
            progress.update(task)
            if task["status"] in SETTLED:
                break
            if deadline is not None and time.monotonic() >= deadline:
                common.info(
                    f"error: task {task_id} is still {task['status']} after"
                    f" {timeout_seconds:g} s (it goes on: `tasker task show {task_id}`)"
                )
                return None
            pause = WAIT_POLL_SECONDS
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)
    if not json_output:
        print_summary(common.stdout_console(), task, time.monotonic() - started)
    return task
