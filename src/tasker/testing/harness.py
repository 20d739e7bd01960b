"""``run_task``: run one task to a final state in this process and look at what happened.

Each run gets its own SQLite file (created, migrated, removed afterwards) and a
:class:`~tasker.FakeClock`, so backoff costs no time yet every ``next_retry_at`` stays
in the history. Step timeouts are real time: give timed-out steps a small
``timeout_seconds``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasker.clock import Clock, FakeClock
from tasker.config import Settings
from tasker.definitions import Template, TemplateDefinition, TemplateRegistry, load_template_file
from tasker.engine.creation import TaskRequest
from tasker.facade import Tasker
from tasker.runtime.runner import run_until_final
from tasker.store import open_database
from tasker.store.database import Database
from tasker.store.migrations import upgrade
from tasker.testing.patterns import Plans, apply_plans

EVENT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class TaskRun:
    """What one ``run_task`` did, read back from the database once the task was final.

    task: the task as the contract's JSON (with its steps).
    steps: step name -> step JSON (status, attempts, results, error...).
    events: the task's events, oldest first (``name``, ``step_name``, ``payload``...).
    transitions: the task's and its steps' history rows (``entity`` is "task" or "step").
    execution_order: step names in the order they first started.
    database_url: where it ran; None when it was a temporary file, now removed.
    """

    task_id: int
    status: str
    task: dict[str, Any]
    steps: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    execution_order: list[str]
    template: TemplateDefinition
    database_url: str | None = None

    def step(self, name: str) -> dict[str, Any]:
        """The step JSON of ``name``; a KeyError naming the known steps otherwise."""
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(
                f"task {self.task_id} has no step {name!r}; steps: {', '.join(self.steps)}"
            ) from None

    def attempts(self, name: str) -> int:
        """How many times step ``name`` ran (the first attempt included)."""
        attempts: int = self.step(name)["attempts"]
        return attempts

    def results(self, name: str) -> Any:
        """What step ``name`` returned (None unless it completed)."""
        return self.step(name)["results"]

    def events_named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name`` (e.g. ``"step.retry_scheduled"``), oldest first."""
        return [event for event in self.events if event["name"] == name]


def run_task(
    template: TemplateDefinition | Template | str | Path,
    context: Mapping[str, Any] | None = None,
    *,
    plans: Plans | None = None,
    database_url: str | None = None,
    clock: Clock | None = None,
    registry: TemplateRegistry | None = None,
    signals: Mapping[str, Any] | None = None,
) -> TaskRun:
    """Create a task of ``template`` with ``context`` and run it here until it is final.

    template: a TemplateDefinition (e.g. from ``tasker.testing.patterns``), a
        ``tasker.Template`` builder (its handlers run in-process), or a YAML file path.
    plans: ``{step name: plan}`` merged into those steps' config (see
        ``tasker.testing.handlers``); not for builders, whose steps take ``config=``.
    database_url: run there (migrated first, kept afterwards) instead of a temporary
        SQLite file.
    clock: default a new FakeClock; a SystemClock makes backoff really wait.
    registry: register the template in this registry instead of a new one.
    signals: ``{signal name: payload}`` delivered as soon as the task exists; a step that
        waits for one uses it when its parents are done (``wait_for``). A step waiting
        for a signal not given leaves the task ``in_progress``.
    """
    registry = registry if registry is not None else TemplateRegistry()
    definition = _register(template, plans or {}, registry)
    with _migrated_database(database_url) as (url, database):
        app = Tasker(
            database, registry, clock=clock or FakeClock(), settings=Settings(database_url=url)
        )
        task_id, _ = app.create_task(
            TaskRequest(
                definition.name,
                dict(context or {}),
                namespace=definition.namespace,
                version=definition.version,
            )
        )
        for name, payload in (signals or {}).items():
            app.signal_task(task_id, name, payload, actor="test")
        status = run_until_final(app, task_id)
        return _snapshot(app, task_id, status, definition, database_url)


def _register(
    template: TemplateDefinition | Template | str | Path,
    plans: Plans,
    registry: TemplateRegistry,
) -> TemplateDefinition:
    if isinstance(template, Template):
        if plans:
            raise TypeError(
                "plans apply to a TemplateDefinition or a YAML file; with a Template "
                "builder give each step its config with @template.step(config=...)"
            )
        return registry.add(template)
    if isinstance(template, str | Path):
        found = load_template_file(template)
        if len(found) != 1:
            keys = ", ".join(t.key for t in found)
            raise ValueError(
                f"{template} holds {len(found)} templates ({keys}); run_task needs a file "
                "with exactly one, or pass the TemplateDefinition itself"
            )
        template = found[0]
    if not isinstance(template, TemplateDefinition):
        raise TypeError(
            "template must be a TemplateDefinition, a tasker.Template or a YAML file path, "
            f"got {type(template).__name__}"
        )
    return registry.add(apply_plans(template, plans))


@contextmanager
def _migrated_database(database_url: str | None) -> Iterator[tuple[str, Database]]:
    directory = None
    if database_url is None:
        directory = tempfile.mkdtemp(prefix="tasker-test-")
        database_url = f"sqlite:///{Path(directory) / 'tasker.db'}"
    try:
        database = open_database(database_url)
        try:
            upgrade(database)
            yield database_url, database
        finally:
            database.close()
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _snapshot(
    app: Tasker,
    task_id: int,
    status: str,
    definition: TemplateDefinition,
    database_url: str | None,
) -> TaskRun:
    task = app.get_task(task_id)
    transitions = app.transitions(task_id)
    return TaskRun(
        task_id=task_id,
        status=status,
        task=task,
        steps={step["name"]: step for step in task["steps"]},
        events=_all_events(app, task_id),
        transitions=transitions,
        execution_order=execution_order(transitions),
        template=definition,
        database_url=database_url,
    )


def _all_events(app: Tasker, task_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = app.events(events[-1]["id"] if events else 0, task_id=task_id, limit=EVENT_PAGE_SIZE)
        events.extend(page)
        if len(page) < EVENT_PAGE_SIZE:
            return events


def step_history(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step transitions among ``transitions``, in the order they were written."""
    return sorted((t for t in transitions if t["entity"] == "step"), key=lambda t: t["id"])


def execution_order(transitions: list[dict[str, Any]]) -> list[str]:
    """Step names in the order of their first ``-> in_progress`` transition."""
    order: list[str] = []
    for row in step_history(transitions):
        if row["to_state"] == "in_progress" and row["step_name"] not in order:
            order.append(row["step_name"])
    return order
