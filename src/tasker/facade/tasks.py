"""Tasks: creating them, reading them, and what operators do to them (cancel, retry,
resolve, signal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tasker.definitions import TemplateDefinition, child_templates
from tasker.engine import batch, children, creation, recovery, signals
from tasker.engine.batch import BatchItemResult
from tasker.engine.creation import TaskRequest
from tasker.exceptions import DuplicateKey, NotFound, TemplateError, ValidationError
from tasker.facade.core import Core
from tasker.payloads import check_storable
from tasker.serialization import task_json
from tasker.store.database import Connection, Row


class Tasks(Core):
    def create_task(self, request: TaskRequest, *, actor: str | None = None) -> tuple[int, bool]:
        """Create a task; returns ``(task_id, created)``. With an idempotency key, the same
        request returns the existing task (created False) and a different one raises
        IdempotencyConflict. Nothing is written when the request is invalid."""
        template = self.template(request.name, request.namespace, request.version)
        creation.check_request(template, request)
        # Every template its steps may start as child tasks, found (and checked for
        # cycles) now, and stored with the task: the engine starts children from them.
        try:
            descendants = child_templates(template, self._child_template)
        except TemplateError as exc:  # bad input for this request (422, exit 2), not a crash
            raise ValidationError(
                f"cannot create a task of {template.key}: {exc}", errors=[str(exc)]
            ) from exc
        if request.trace_context is None:
            # The OpenTelemetry API is imported when a task is made, not by every command.
            from tasker.observability.tracing import start_task_trace

            trace_context = start_task_trace(template.namespace, template.name, template.version)
            request = replace(request, trace_context=trace_context)

        stored = self._stored_templates.get(template.key)
        known_id = stored[1] if stored is not None and stored[0] == template else None

        stored_children: dict[str, tuple[TemplateDefinition, int]] = {}

        def work(conn: Connection) -> tuple[int, bool, int | None]:
            stored_children.clear()
            existing = creation.find_idempotent(conn, template, request)
            if existing is not None:
                return existing, False, None
            template_id = known_id or creation.register_template(conn, template, self.now())
            for child in descendants:
                if self._stored_templates.get(child.key, (None, 0))[0] != child:
                    stored_children[child.key] = (
                        child,
                        creation.register_template(conn, child, self.now()),
                    )
            task_id = children.create_task(
                conn,
                template,
                request,
                self.now(),
                actor,
                template_id=template_id,
                max_steps=self.settings.max_task_steps,
            )
            return task_id, True, template_id

        try:
            task_id, created, template_id = self.write(work)
        except DuplicateKey:
            # Another request with the same key won the race: answer as if it came first.
            task_id, created, template_id = self.write(work)
        if template_id is not None:  # committed: later creations may skip registering
            self._stored_templates[template.key] = (template, template_id)
            self._stored_templates.update(stored_children)
        if created:
            self.metrics.tasks_created.inc()
        return task_id, created

    def create_tasks(
        self, requests: Sequence[TaskRequest], *, actor: str | None = None
    ) -> list[BatchItemResult]:
        """Create many tasks, each item on its own (``engine/batch.py``): one result per
        request, in order, with the task (``created`` False when its idempotency key had
        made it already) or an error naming the item and the problem. A bad item stores
        nothing and stops no other; the good ones are written in chunks of
        ``batch.CHUNK_SIZE``, one transaction each."""
        creator = batch.BatchCreation(
            find_template=self.template,
            child_template=self._child_template,
            write=self.write,
            now=self.now,
            stored=self._stored_templates,
            actor=actor,
            max_steps=self.settings.max_task_steps,
            chunk_size=batch.CHUNK_SIZE,
        )
        return creator.run(requests, on_created=self.metrics.tasks_created.inc)

    def open_descendants(self, task_id: int) -> list[int]:
        """The ids of the tasks below ``task_id`` (its child tasks, theirs...) that are
        not final yet, oldest first."""
        rows = self.read(lambda c: c.fetch_all("open_descendants", task_id=task_id))
        return [int(row["id"]) for row in rows]

    def children_of(self, task_id: int) -> list[Row]:
        """The child tasks ``task_id`` started (id, status, parent_step_id), oldest first."""
        return self.read(lambda c: children.children_of(c, task_id))

    def get_task(self, task_id: int, *, with_steps: bool = True) -> dict[str, Any]:
        def work(conn: Connection) -> dict[str, Any]:
            task = conn.fetch_one("get_task", task_id=task_id)
            if task is None:
                raise NotFound(f"task {task_id} does not exist")
            steps = conn.fetch_all("task_step_views", task_ids=[task_id]) if with_steps else None
            return task_json(task, steps)

        return self.read(work)

    def list_tasks(
        self,
        *,
        status: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        rows = self.read(
            lambda c: c.fetch_all(
                "list_tasks",
                status=status,
                namespace=namespace,
                name=name,
                before_id=before_id,
                limit=limit,
            )
        )
        return [task_json(row, None) for row in rows]

    def task_counts(
        self, *, namespace: str | None = None, name: str | None = None
    ) -> dict[str, int]:
        """How many tasks are in each status (only statuses that have some), of one
        namespace and template name when given."""
        rows = self.read(
            lambda c: c.fetch_all("count_tasks_by_status", namespace=namespace, name=name)
        )
        return {row["status"]: int(row["n"]) for row in rows}

    def task_by_idempotency_key(self, key: str) -> int | None:
        """The id of the task created with this idempotency key, if any."""
        row = self.read(lambda c: c.fetch_one("get_task_by_idempotency_key", key=key))
        return None if row is None else int(row["id"])

    def cancel_task(
        self, task_id: int, *, actor: str | None = None, reason: str | None = None
    ) -> bool:
        return self.write(
            lambda c: recovery.cancel_task(c, task_id, self.now(), actor=actor, reason=reason)
        )

    def retry_task(
        self, task_id: int, *, actor: str | None = None, reason: str | None = None
    ) -> list[str]:
        return self.write(
            lambda c: recovery.retry_task(c, task_id, self.now(), actor=actor, reason=reason)
        )

    def retry_step(
        self, task_id: int, step: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        self.write(
            lambda c: recovery.retry_step(c, task_id, step, self.now(), actor=actor, reason=reason)
        )

    def resolve_step(
        self,
        task_id: int,
        step: str,
        *,
        reason: str,
        actor: str | None = None,
        results: Any = None,
        branch: tuple[str, ...] | None = None,
    ) -> None:
        """Declare a step done by hand; a branching step needs ``branch``, the children
        that run (the others are skipped)."""
        check_storable(results, "results", max_bytes=self.settings.max_result_bytes)
        self.write(
            lambda c: recovery.resolve_step(
                c,
                task_id,
                step,
                self.now(),
                actor=actor,
                reason=reason,
                results=results,
                branch=branch,
            )
        )

    def signal_task(
        self, task_id: int, name: str, payload: Any = None, *, actor: str | None = None
    ) -> signals.SignalReceipt:
        """Deliver signal ``name`` to a task (``wait_for``). The same signal again with the
        same payload is a no-op (``created`` False); with another, SignalConflict."""
        check_storable(payload, "signal payload", max_bytes=self.settings.max_result_bytes)
        return self.write(
            lambda c: signals.deliver_signal(c, task_id, name, payload, self.now(), actor=actor)
        )

    def ancestor_results(self, step_id: int, name: str) -> Any:
        """The results of the step ``name`` upstream of ``step_id`` (``step.ancestor``)."""
        row = self.read(lambda c: c.fetch_one("ancestor_results", step_id=step_id, name=name))
        if row is None:
            raise KeyError(f"no step {name!r} is upstream of this step")
        return row["results"]

    def all_ancestor_results(self, step_id: int) -> dict[str, Any]:
        rows = self.read(lambda c: c.fetch_all("all_ancestor_results", step_id=step_id))
        return {row["name"]: row["results"] for row in rows}
