"""sqlite_processes: how many worker processes can share one SQLite file?

Independent single-step no-op tasks are drained by 1, 2, 4, 8, 16 and 32 ``--burst``
worker processes (concurrency 50 each) on one SQLite file (``--smoke``: 1 and 4
processes, fewer tasks). Reported per process count: steps/s between the first start
and the last completion, and the "database is locked" lines the workers logged. This is
the measurement behind the SQLite limit in ``docs/operations.md``.
"""

from __future__ import annotations

from benchmarks.harness import (
    Figure,
    Run,
    ScenarioResult,
    create_tasks,
    single,
    tasker_database,
    write_template,
)
from benchmarks.processes import burst_run

NAME = "sqlite_processes"
SUMMARY = "SQLite: steps/s and lock errors with 1 to 32 worker processes on one file"


def run(run: Run) -> ScenarioResult:
    result = ScenarioResult(NAME)
    counts = run.pick((1, 2, 4, 8, 16, 32), (1, 4))
    tasks = run.pick(4000, 300)
    result.sizes = {"tasks": tasks, "processes": list(counts), "concurrency": 50}
    if not run.uses("sqlite"):
        result.skipped = "the sqlite backend was not selected"
        return result
    template = write_template(run, "single_noop", single())
    samples = []
    for processes in counts:
        with tasker_database(run, "sqlite", f"{NAME}_{processes}") as url:
            create_tasks(run, url, template, tasks)
            sample = burst_run(run, url, processes=processes, concurrency=50, batch_size=50)
        if sample["completed"] != tasks or any(sample["exit_codes"]):
            raise RuntimeError(f"{processes} processes: {sample}")
        samples.append({"processes": processes, **sample})
        figure = result.add(
            Figure(
                NAME,
                "sqlite",
                f"independent steps/s, {processes} worker processes on one file",
                sample["steps_per_second"],
                "steps/s",
                key=f"sqlite_processes.{processes}",
                detail=f'"database is locked" log lines: {sample["locked_messages"]}',
            )
        )
        if samples[0] is not samples[-1]:
            figure.ratio_to("x 1 process", samples[0]["steps_per_second"])
    result.samples = {"runs": samples}
    return result
