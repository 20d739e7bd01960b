"""Creating many tasks at once, each item on its own: a bad item gets an error, the rest
are created.

Every item is checked before anything is written (its template, its context against
the template's schema, its concurrency key field, its child templates), so most bad
items never reach the database. The good ones are written in chunks, one transaction
per chunk (``CHUNK_SIZE`` items), so a file of a million lines never holds one giant
transaction.

A chunk is written chunk-wide: one look-up of all its idempotency keys, then its tasks,
their steps and their edges by one multi-row insert each, and the history and events of
all of them in one flush, built by the same code as a single creation
(``engine/creation.py``), so the rows, history and events are the same. Items of a
template whose roots start at once in a way only single creation handles (a root that
waits for a signal, a root that starts a child workflow) are written one by one by the
same ``children.create_task`` as a single creation, inside a savepoint; consecutive
items of a chunk stay in order either way. When the database refuses a chunk-wide write
(a value only it can check, or a concurrent creator committed one of the idempotency keys
after the look-up), that part of the chunk is undone and written item by item: the one
bad item then gets its error, and a key that lost the race answers with the task that won.

Idempotency works as for one task: a key already stored with the same request returns
that task (``created`` False), with a different request it is an error of that item.
Two items of one batch with the same key are one task: the later returns the earlier's
(or is an error when its request differs).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from tasker.definitions import (
    ChildWorkflow,
    TemplateDefinition,
    child_templates,
)
from tasker.engine import children, creation
from tasker.engine.creation import TaskRequest
from tasker.engine.history import HistoryWriter
from tasker.engine.maps import DEFAULT_MAX_TASK_STEPS
from tasker.exceptions import (
    DuplicateKey,
    IdempotencyConflict,
    StoreError,
    TaskerError,
    TemplateError,
    ValidationError,
)
from tasker.store.database import Connection, Json, Row

CHUNK_SIZE = 500  # items per write transaction
T = TypeVar("T")
TemplateIds = dict[str, tuple[TemplateDefinition, int]]  # template key -> (definition, row id)


class Write(Protocol):
    """Runs ``work`` in a write transaction, again when it lost a race (``Tasker.write``)."""

    def __call__(self, work: Callable[[Connection], T], /) -> T: ...


@dataclass(frozen=True)
class BatchItemResult:
    """What became of one item of a batch: the task (``created`` False when its
    idempotency key had made it already), or ``error`` naming the item and the problem."""

    index: int
    task_id: int | None
    created: bool
    error: str | None = None

    @property
    def problem(self) -> str | None:
        """The error without its ``item N:`` prefix."""
        return None if self.error is None else self.error.partition(": ")[2]

    def at(self, index: int) -> BatchItemResult:
        """The same result for item ``index`` of a larger batch this one was part of."""
        problem = self.problem
        return replace(
            self, index=index, error=None if problem is None else f"item {index}: {problem}"
        )


@dataclass(frozen=True)
class _Planned:
    """An item that passed every check, ready to write."""

    index: int
    template: TemplateDefinition
    request: TaskRequest
    descendants: tuple[TemplateDefinition, ...]
    request_hash: str


def describe(exc: TaskerError) -> str:
    """An error's message with the problems it lists (a context's schema errors)."""
    details = getattr(exc, "errors", None) or []
    return f"{exc}" + (f" ({'; '.join(details)})" if details else "")


def _failed(index: int, problem: str) -> BatchItemResult:
    return BatchItemResult(index, None, False, f"item {index}: {problem}")


class BatchCreation:
    """One call of ``Tasker.create_tasks``: plan every item, then write the good ones.

    ``find_template`` and ``child_template`` resolve templates as single creation does;
    ``write`` runs a function in a write transaction (again on a lost race); ``stored``
    holds the templates this process has stored with their ids, and learns new ones.
    """

    def __init__(
        self,
        *,
        find_template: Callable[[str, str, str | None], TemplateDefinition],
        child_template: Callable[[ChildWorkflow], TemplateDefinition],
        write: Write,
        now: Callable[[], datetime],
        stored: TemplateIds,
        actor: str | None = None,
        max_steps: int = DEFAULT_MAX_TASK_STEPS,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self._find_template = find_template
        self._child_template = child_template
        self._write = write
        self._now = now
        self._stored = stored
        self._actor = actor
        self._max_steps = max_steps
        self._chunk_size = chunk_size
        self._templates: dict[tuple[str, str, str | None], TemplateDefinition | TaskerError] = {}
        self._descendants: dict[str, tuple[TemplateDefinition, ...] | TaskerError] = {}
        self._chunk_wide: dict[str, bool] = {}  # template key -> written chunk-wide
        self._untraced: dict[str, dict[str, str] | None] = {}  # template key -> no-op trace

    def run(
        self, requests: Sequence[TaskRequest], on_created: Callable[[int], None] | None = None
    ) -> list[BatchItemResult]:
        """Every item's result, in order. ``on_created(n)`` after each committed chunk
        that created ``n`` tasks (the metrics count them as they commit)."""
        results: dict[int, BatchItemResult] = {}
        planned: list[_Planned] = []
        same_as: dict[int, int] = {}  # index -> earlier index with the same key and request
        first_with_key: dict[str, _Planned] = {}
        for index, request in enumerate(requests):
            outcome = self._plan(index, request)
            if isinstance(outcome, BatchItemResult):
                results[index] = outcome
                continue
            key = request.idempotency_key
            if key is not None and key in first_with_key:
                first = first_with_key[key]
                if first.request_hash != outcome.request_hash:
                    # No index named: callers may renumber items (the API and the CLI
                    # pass on only those that parsed), and the key finds the other one.
                    results[index] = _failed(
                        index,
                        f"idempotency key {key!r} is used by an earlier item of this batch "
                        "with a different request",
                    )
                else:
                    same_as[index] = first.index
                continue
            if key is not None:
                first_with_key[key] = outcome
            planned.append(outcome)
        if planned:
            template_ids = self._register(planned)
            for start in range(0, len(planned), self._chunk_size):
                chunk = planned[start : start + self._chunk_size]
                written = self._write(partial(self._write_chunk, chunk=chunk, ids=template_ids))
                results.update((r.index, r) for r in written)
                if on_created is not None:
                    on_created(sum(r.created for r in written))
        for index, earlier_index in same_as.items():
            earlier = results[earlier_index]
            if earlier.error is None:
                results[index] = BatchItemResult(index, earlier.task_id, False)
            else:  # the same request meets the same problem
                results[index] = earlier.at(index)
        return [results[index] for index in range(len(requests))]

    # -- checking, before anything is written ------------------------------------------

    def _plan(self, index: int, request: TaskRequest) -> _Planned | BatchItemResult:
        try:
            if not isinstance(request, TaskRequest):
                raise ValidationError(f"expected a TaskRequest, got {type(request).__name__}")
            template = self._template(request)
            creation.check_request(template, request)
            if len(template.steps) > self._max_steps:
                raise ValidationError(
                    f"template {template.key} has {len(template.steps)} steps, more than a "
                    f"task may have ({self._max_steps}, TASKER_MAX_TASK_STEPS)"
                )
            descendants = self._descendants_of(template)
        except TaskerError as exc:
            return _failed(index, describe(exc))
        if request.trace_context is None:
            trace_context = self._trace(template)
            if trace_context is not None:  # (replace costs as much as the checks)
                request = replace(request, trace_context=trace_context)
        hashed = creation.request_hash(template, request.context)
        return _Planned(index, template, request, descendants, hashed)

    def _trace(self, template: TemplateDefinition) -> dict[str, str] | None:
        """A new task's trace context, as single creation starts it. Without a tracing SDK
        the span is a no-op whose context is the caller's current one (or none), the same
        for every item: it is found once per template."""
        from tasker.observability.tracing import start_task_trace, tracing_enabled

        identity = (template.namespace, template.name, template.version)
        if tracing_enabled():
            return start_task_trace(*identity)
        if template.key not in self._untraced:
            self._untraced[template.key] = start_task_trace(*identity)
        return self._untraced[template.key]

    def _template(self, request: TaskRequest) -> TemplateDefinition:
        """The request's template, looked up once per batch (a miss may read the database)."""
        key = (request.name, request.namespace, request.version)
        if key not in self._templates:
            try:
                self._templates[key] = self._find_template(*key)
            except TaskerError as exc:
                self._templates[key] = exc
        found = self._templates[key]
        if isinstance(found, TaskerError):
            raise found
        return found

    def _descendants_of(self, template: TemplateDefinition) -> tuple[TemplateDefinition, ...]:
        if template.key not in self._descendants:
            try:
                self._descendants[template.key] = tuple(
                    child_templates(template, self._child_template)
                )
            except TemplateError as exc:
                self._descendants[template.key] = ValidationError(
                    f"cannot create a task of {template.key}: {exc}", errors=[str(exc)]
                )
        found = self._descendants[template.key]
        if isinstance(found, TaskerError):
            raise found
        return found

    # -- writing -----------------------------------------------------------------------

    def _register(self, planned: list[_Planned]) -> TemplateIds:
        """Store each template the batch uses (and those its steps may start) once, in a
        transaction of its own: the chunks then need not take the template rows' locks."""
        needed = {p.template.key: p.template for p in planned}
        for item in planned:
            needed.update((d.key, d) for d in item.descendants)
        missing = [t for key, t in needed.items() if self._stored.get(key, (None, 0))[0] != t]
        if missing:
            now = self._now()

            def register(conn: Connection) -> dict[str, int]:
                return {t.key: creation.register_template(conn, t, now) for t in missing}

            ids = self._write(register)
            self._stored.update((t.key, (t, ids[t.key])) for t in missing)
        return {key: self._stored[key] for key in needed}

    def _write_chunk(
        self, conn: Connection, *, chunk: list[_Planned], ids: TemplateIds
    ) -> list[BatchItemResult]:
        now = self._now()
        stored = children.StoredTemplates(conn)
        results: list[BatchItemResult] = []
        # Runs of consecutive items, so task ids and events follow the items' order.
        for chunk_wide, run in itertools.groupby(chunk, key=lambda i: self._fits(i.template)):
            items = list(run)
            if chunk_wide:
                results.extend(self._write_together(conn, items, ids, now, stored))
            else:
                results.extend(self._write_each(conn, items, ids, now, stored))
        return results

    def _fits(self, template: TemplateDefinition) -> bool:
        """Whether tasks of ``template`` can be written chunk-wide: their creation only
        inserts rows (no root waits for a signal or starts a child workflow at once)."""
        if template.key not in self._chunk_wide:
            roots = [spec for spec in template.steps if not spec.depends_on]
            self._chunk_wide[template.key] = not any(
                spec.wait_for is not None
                or (spec.workflow is not None and not spec.handler and not spec.map)
                for spec in roots
            )
        return self._chunk_wide[template.key]

    def _write_each(
        self,
        conn: Connection,
        items: list[_Planned],
        ids: TemplateIds,
        now: datetime,
        stored: children.StoredTemplates,
    ) -> list[BatchItemResult]:
        """Items one by one, each in a savepoint, as single creation writes them."""
        results = []
        for item in items:
            try:
                results.append(self._write_item(conn, item, ids, now, stored))
            except IdempotencyConflict as exc:
                results.append(_failed(item.index, str(exc)))
        return results

    def _write_together(
        self,
        conn: Connection,
        items: list[_Planned],
        ids: TemplateIds,
        now: datetime,
        stored: children.StoredTemplates,
    ) -> list[BatchItemResult]:
        """Items by one statement per table, in a savepoint; item by item when the
        database refuses that (a value it alone checks, a key a concurrent creator
        committed since the look-up)."""
        try:
            with conn.savepoint():
                return self._insert_together(conn, items, ids, now, stored)
        except (DuplicateKey, ValidationError):
            pass
        except StoreError as exc:
            if type(exc) is not StoreError:  # unreachable, busy, no schema: not the items'
                raise
        return self._write_each(conn, items, ids, now, stored)

    def _insert_together(
        self,
        conn: Connection,
        items: list[_Planned],
        template_ids: TemplateIds,
        now: datetime,
        stored: children.StoredTemplates,
    ) -> list[BatchItemResult]:
        results = {}
        keys = [i.request.idempotency_key for i in items if i.request.idempotency_key is not None]
        found = {
            row["idempotency_key"]: row
            for row in (conn.fetch_all("tasks_by_idempotency_keys", keys=keys) if keys else [])
        }
        new: list[_Planned] = []
        for item in items:
            key = item.request.idempotency_key
            row = None if key is None else found.get(key)
            if key is None or row is None:
                new.append(item)
            elif row["request_hash"] != item.request_hash:
                results[item.index] = _failed(item.index, str(IdempotencyConflict(key, row["id"])))
            else:
                results[item.index] = BatchItemResult(item.index, row["id"], False)
        if new:
            task_ids = self._insert_new(conn, new, template_ids, now, stored)
            results.update(
                (item.index, BatchItemResult(item.index, task_id, True))
                for item, task_id in zip(new, task_ids, strict=True)
            )
        return [results[item.index] for item in items]

    def _insert_new(
        self,
        conn: Connection,
        items: list[_Planned],
        template_ids: TemplateIds,
        now: datetime,
        stored: children.StoredTemplates,
    ) -> list[int]:
        """Insert the tasks of ``items`` with their steps, edges, history and events, as
        ``creation.insert_task`` does one; returns their ids, in order."""
        shapes: dict[str, int] = {}  # template key -> index of its step and edge rows
        step_rows: list[dict[str, Any]] = []
        edge_rows: list[dict[str, Any]] = []
        task_rows = []
        starts = []  # (run_at, priority) of each item
        for seq, item in enumerate(items):
            template, request = item.template, item.request
            if template.key not in shapes:
                shape = shapes[template.key] = len(shapes)
                pins = children.pinned_workflows(template, stored)
                step_rows += [{**r, "shape": shape} for r in creation.step_rows(template, pins)]
                edge_rows += [{**r, "shape": shape} for r in creation.edge_rows(template)]
            run_at = creation.start_time(request, now)
            priority = template.priority if request.priority is None else request.priority
            starts.append((run_at, priority))
            row = {
                **creation.task_row(
                    template,
                    request,
                    template_ids[template.key][1],
                    self._max_steps,
                    run_at,
                    priority,
                ),
                "seq": seq,
                "request_hash": item.request_hash,
                # As text, so each is stored exactly as a single creation stores it.
                "context": json.dumps(request.context),
                "tags": json.dumps(list(request.tags)),
                "trace_context": json.dumps(request.trace_context)
                if request.trace_context
                else None,
            }
            # A missing key reads as NULL: the document the database parses is smaller.
            task_rows.append({k: v for k, v in row.items() if v is not None})
        # Ids are given in the rows' order (ORDER BY seq), so sorted they are the items'.
        task_ids = sorted(
            r["id"] for r in conn.fetch_all("insert_tasks", rows=Json(task_rows), now=now)
        )
        if len(task_ids) != len(items):
            raise StoreError(f"insert_tasks created {len(task_ids)} tasks of {len(items)}")
        step_tasks = [
            {
                "seq": seq,
                "task_id": task_id,
                "shape": shapes[item.template.key],
                "namespace": item.template.namespace,
                "start_at": max(now, run_at) if run_at is not None else now,
                "priority": priority,
                "task_key": creation.task_key(item.template, item.request),
                "task_key_limit": None
                if item.template.concurrency is None
                else item.template.concurrency.limit,
            }
            for seq, (item, task_id, (run_at, priority)) in enumerate(
                zip(items, task_ids, starts, strict=True)
            )
        ]
        steps: dict[int, list[Row]] = {task_id: [] for task_id in task_ids}
        inserted = conn.fetch_all(
            "insert_tasks_steps", tasks=Json(step_tasks), steps=Json(step_rows), now=now
        )
        for step in sorted(inserted, key=lambda s: s["id"]):  # each task's in position order
            steps[step["task_id"]].append(step)
        if edge_rows:
            edge_tasks = [{"task_id": t["task_id"], "shape": t["shape"]} for t in step_tasks]
            conn.execute("insert_tasks_edges", tasks=Json(edge_tasks), edges=Json(edge_rows))
        history = HistoryWriter()
        wake = False
        for item, task_id, (run_at, priority) in zip(items, task_ids, starts, strict=True):
            template = item.template
            created = steps[task_id]
            creation.record_created(
                history, task_id, template, item.request, created, run_at, priority, self._actor
            )
            wake = creation.record_ready(history, task_id, template, created, run_at, now) or wake
        if wake:
            history.notify_steps_ready()
        history.flush(conn, now)
        return task_ids

    def _write_item(
        self,
        conn: Connection,
        item: _Planned,
        template_ids: TemplateIds,
        now: datetime,
        stored: children.StoredTemplates,
    ) -> BatchItemResult:
        existing = creation.find_idempotent(conn, item.template, item.request)
        if existing is not None:
            return BatchItemResult(item.index, existing, False)
        try:
            with conn.savepoint():
                task_id = children.create_task(
                    conn,
                    item.template,
                    item.request,
                    now,
                    self._actor,
                    template_id=template_ids[item.template.key][1],
                    max_steps=self._max_steps,
                    stored=stored,
                )
        except DuplicateKey:
            # A concurrent creator committed this key after we looked: answer with its task.
            existing = creation.find_idempotent(conn, item.template, item.request)
            if existing is None:
                raise
            return BatchItemResult(item.index, existing, False)
        except ValidationError as exc:  # a value only the driver could check
            return _failed(item.index, describe(exc))
        except StoreError as exc:
            if type(exc) is not StoreError:  # unreachable, busy, no schema: not this item's
                raise
            return _failed(item.index, str(exc))  # a value the database refused
        return BatchItemResult(item.index, task_id, True)
