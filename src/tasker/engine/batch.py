"""Creating many tasks at once, each item on its own: a bad item gets an error, the rest
are created.

Every item is checked before anything is written (its template, its context against
the template's schema, its concurrency key field, its child templates), so most bad
items never reach the database. The good ones are written in chunks, one transaction
per chunk (``CHUNK_SIZE`` items), so a file of a million lines never holds one giant
transaction; each item is written by the same ``children.create_task`` as a single
creation (the same rows, history and events), inside a savepoint, so the one problem
only the database can find (a concurrent creator committed the same idempotency key)
undoes that item alone, which then answers with the task that won.

Idempotency works as for one task: a key already stored with the same request returns
that task (``created`` False), with a different request it is an error of that item.
Two items of one batch with the same key are one task: the later returns the earlier's
(or is an error when its request differs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar

from tasker.definitions import (
    ChildWorkflow,
    TemplateDefinition,
    child_templates,
)
from tasker.engine import children, creation
from tasker.engine.creation import TaskRequest
from tasker.engine.maps import DEFAULT_MAX_TASK_STEPS
from tasker.exceptions import (
    DuplicateKey,
    IdempotencyConflict,
    StoreError,
    TaskerError,
    TemplateError,
    ValidationError,
)
from tasker.store.database import Connection

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
                if creation.request_hash(first.template, first.request.context) != (
                    creation.request_hash(outcome.template, request.context)
                ):
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
            from tasker.observability.tracing import start_task_trace

            trace_context = start_task_trace(template.namespace, template.name, template.version)
            request = replace(request, trace_context=trace_context)
        return _Planned(index, template, request, descendants)

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
        results = []
        for item in chunk:
            try:
                results.append(self._write_item(conn, item, ids, now, stored))
            except IdempotencyConflict as exc:
                results.append(_failed(item.index, str(exc)))
        return results

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
