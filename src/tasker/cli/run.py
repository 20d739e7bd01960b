"""``tasker run``: create a task and run it to a final state in this process."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from tasker.cli import common
from tasker.cli.progress import TaskProgress, print_summary, progress_console
from tasker.engine.creation import TaskRequest


def run_command(
    ctx: typer.Context,
    name: common.TemplateNameArgument,
    context: common.ContextOption = None,
    context_file: common.ContextFileOption = None,
    namespace: common.NamespaceOption = "default",
    version: common.VersionOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final task as the contract's JSON.")
    ] = False,
) -> None:
    """Create a task and run its steps here until it is final (no worker needed).

    Exit 0 when it completes, 1 when it ends in error or is cancelled.
    """
    from tasker.runtime.runner import run_until_final

    request = TaskRequest(
        name=name,
        context=common.read_context(context, context_file),
        namespace=namespace,
        version=version,
    )
    console, live = progress_console(as_json)
    with common.open_tasker(ctx, with_templates=True) as tasker:
        task_id, _ = tasker.create_task(request, actor=common.actor())
        tasker.register_templates()  # once the request is known valid
        started = time.monotonic()
        with TaskProgress(console, live=live) as progress:
            progress.update(tasker.get_task(task_id))
            run_until_final(
                tasker, task_id, on_progress=lambda: progress.update(tasker.get_task(task_id))
            )
            task = tasker.get_task(task_id)
            progress.update(task)
    if as_json:
        common.print_json(task)
    else:
        print_summary(common.stdout_console(), task, time.monotonic() - started)
    raise typer.Exit(common.exit_code_for(task["status"]))
