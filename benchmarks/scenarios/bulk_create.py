"""bulk_create: tasks/s of ``Tasker.create_tasks`` against a loop of ``create_task``.

On a fresh database per backend, one process: 10,000 single-step tasks by one
``create_tasks`` call (chunks of 500, one transaction each), again with an idempotency
key per item, and a loop of ``create_task`` in the same run as the reference. Every
task is counted in the database afterwards. The template is stored before timing.
"""

from __future__ import annotations

import time
import uuid

from benchmarks.harness import (
    NAMESPACE,
    Figure,
    Probe,
    Run,
    ScenarioResult,
    open_tasker,
    single,
    tasker_database,
    write_template,
)

NAME = "bulk_create"
SUMMARY = "bulk_create: tasks/s of create_tasks (10,000 in one call) vs a create_task loop"


def run(run: Run) -> ScenarioResult:
    from tasker import TaskRequest

    result = ScenarioResult(NAME)
    batch_size = run.pick(10_000, 300)
    loop_size = run.pick(2_000, 100)
    backends = run.scenario_backends()
    result.sizes = {"batch": batch_size, "loop": loop_size}
    if not backends:
        result.skipped = "no backend available"
        return result
    template = write_template(run, "bulk_seed", single())
    for backend in backends:
        with tasker_database(run, backend, f"{NAME}_{backend}") as url:
            tasker = open_tasker(run, url)
            try:
                tasker.create_task(TaskRequest(template, namespace=NAMESPACE))  # stores it
                rates: dict[str, float] = {}
                started = time.perf_counter()
                for _ in range(loop_size):
                    tasker.create_task(TaskRequest(template, namespace=NAMESPACE))
                rates["loop"] = loop_size / (time.perf_counter() - started)
                plain = [TaskRequest(template, namespace=NAMESPACE) for _ in range(batch_size)]
                started = time.perf_counter()
                done = tasker.create_tasks(plain)
                rates["batch"] = batch_size / (time.perf_counter() - started)
                assert all(r.created for r in done)
                prefix = uuid.uuid4().hex[:8]
                keyed = [
                    TaskRequest(template, namespace=NAMESPACE, idempotency_key=f"{prefix}-{n}")
                    for n in range(batch_size)
                ]
                started = time.perf_counter()
                done = tasker.create_tasks(keyed)
                rates["batch_keyed"] = batch_size / (time.perf_counter() - started)
                assert all(r.created for r in done)
            finally:
                tasker.close()
            with Probe(url) as probe:
                count = probe.one("SELECT count(*) AS n FROM tasker.tasks")["n"]
            assert count == 1 + loop_size + 2 * batch_size, count
        loop = result.add(
            Figure(NAME, backend, f"create_task loop, {loop_size:,} tasks", rates["loop"],
                   "tasks/s", key=f"{NAME}.{backend}.loop")
        )  # fmt: skip
        for key, label in (
            ("batch", f"create_tasks, {batch_size:,} tasks in one call"),
            ("batch_keyed", f"create_tasks, {batch_size:,} tasks, each with an idempotency key"),
        ):
            figure = result.add(
                Figure(NAME, backend, label, rates[key], "tasks/s", key=f"{NAME}.{backend}.{key}",
                       target=">= 20,000 tasks/s" if backend == "postgres" else None)
            )  # fmt: skip
            figure.ratio_to("create_task loop", loop.value)
            if backend == "postgres":
                figure.met = rates[key] >= 20_000
    return result
