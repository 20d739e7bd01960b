"""``AsyncClient``: the REST API from asyncio code, on an ``httpx.AsyncClient``. The same
methods as ``Client`` (a test compares them), each awaited; the iterators are async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tasker.client import _calls as calls
from tasker.client._errors import ServerUnavailable
from tasker.client._models import (
    Event,
    EventPage,
    Health,
    SignalReceipt,
    Task,
    TaskBatch,
    TaskDag,
    TaskPage,
    Transition,
    TransitionPage,
)
from tasker.client._sync import DEFAULT_POLL_SECONDS, DEFAULT_TIMEOUT_SECONDS, auth_headers
from tasker.store.readiness import StepReadiness, TaskExecutionContext

T = TypeVar("T")


class AsyncClient:
    """:class:`~tasker.client.Client` for asyncio: the same constructor, the same
    methods, each a coroutine (``iter_*`` are async iterators); ``transport`` is an
    ``httpx.AsyncBaseTransport``. Use it as an async context manager, or await
    :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=auth_headers(token),
            timeout=timeout_seconds,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self, call: calls.Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, content=call.body, headers=call.headers
            )
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"{call.method} {self.base_url}{call.path}: {exc}") from exc
        return call.result(response)

    # -- tasks -----------------------------------------------------------------------------

    async def create_task(
        self,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        initiator: str | None = None,
        source_system: str | None = None,
        reason: str | None = None,
        tags: Sequence[str] = (),
    ) -> Task:
        """Create a task of ``namespace/name`` (``default`` namespace, highest version
        unless given). The same ``idempotency_key`` with the same request returns the task
        it made; with another request it raises IdempotencyConflict."""
        return await self._run(
            calls.create_task(
                name,
                context or {},
                namespace=namespace,
                version=version,
                idempotency_key=idempotency_key,
                initiator=initiator,
                source_system=source_system,
                reason=reason,
                tags=tags,
            )
        )

    async def create_tasks(self, tasks: Sequence[Mapping[str, Any]]) -> TaskBatch:
        """Create many tasks in one request (``POST /v1/tasks:batch``, at most 10,000):
        each item is a body of ``POST /v1/tasks`` (``{"name": ..., "context": ...,
        "idempotency_key": ...}``) and is created or fails on its own; a bad item's
        ``error`` names it and the problem, and stores nothing."""
        return await self._run(calls.create_tasks(tasks))

    async def get_task(self, task_id: int) -> Task:
        return await self._run(calls.get_task(task_id))

    async def list_tasks(
        self,
        *,
        status: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page, newest first (without steps); pass ``next_cursor`` for the next."""
        return await self._run(
            calls.list_tasks(
                status=status, namespace=namespace, name=name, limit=limit, cursor=cursor
            )
        )

    async def iter_tasks(
        self,
        *,
        status: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        page_size: int = 200,
    ) -> AsyncIterator[Task]:
        """Every matching task, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_tasks(
                status=status, namespace=namespace, name=name, limit=page_size, cursor=cursor
            )
            for task in page.tasks:
                yield task
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def wait(
        self,
        task_id: int,
        *,
        timeout_seconds: float | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> Task:
        """Poll until the task is settled (complete, error, cancelled or resolved) and
        return it; WaitTimeout after ``timeout_seconds`` (None: no limit)."""
        started = time.monotonic()
        while True:
            task = await self.get_task(task_id)
            pause = calls.pause_before_next_poll(
                task,
                started=started,
                now=time.monotonic(),
                timeout_seconds=timeout_seconds,
                poll_seconds=poll_seconds,
            )
            if pause is None:
                return task
            await asyncio.sleep(pause)

    async def cancel_task(self, task_id: int, *, reason: str | None = None) -> Task:
        return await self._run(calls.cancel_task(task_id, reason))

    async def retry_task(self, task_id: int, *, reason: str | None = None) -> Task:
        return await self._run(calls.retry_task(task_id, reason))

    async def retry_step(self, task_id: int, step: str, *, reason: str | None = None) -> Task:
        return await self._run(calls.retry_step(task_id, step, reason))

    async def resolve_step(
        self,
        task_id: int,
        step: str,
        *,
        reason: str,
        results: Any = None,
        branch: Sequence[str] | None = None,
    ) -> Task:
        return await self._run(calls.resolve_step(task_id, step, reason, results, branch))

    async def send_signal(self, task_id: int, name: str, payload: Any = None) -> SignalReceipt:
        return await self._run(calls.send_signal(task_id, name, payload))

    # -- inspecting a task -----------------------------------------------------------------

    async def transitions(
        self, task_id: int, *, limit: int | None = None, cursor: str | None = None
    ) -> TransitionPage:
        return await self._run(calls.transitions(task_id, limit=limit, cursor=cursor))

    async def iter_transitions(
        self, task_id: int, *, page_size: int = 1000
    ) -> AsyncIterator[Transition]:
        """The task's whole history (its own rows, then its steps'), a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.transitions(task_id, limit=page_size, cursor=cursor)
            for transition in page.transitions:
                yield transition
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def readiness(self, task_id: int) -> list[StepReadiness]:
        return await self._run(calls.readiness(task_id))

    async def execution_context(self, task_id: int) -> TaskExecutionContext:
        return await self._run(calls.execution_context(task_id))

    async def dag(self, task_id: int) -> TaskDag:
        return await self._run(calls.dag(task_id))

    # -- events, health --------------------------------------------------------------------

    async def list_events(
        self,
        *,
        after: int = 0,
        task_id: int | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> EventPage:
        """Events with an id above ``after``, oldest first; ``next`` is the next ``after``."""
        return await self._run(
            calls.list_events(after=after, task_id=task_id, name=name, limit=limit)
        )

    async def iter_events(
        self,
        *,
        after: int = 0,
        task_id: int | None = None,
        name: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[Event]:
        """The events after ``after`` as far as the log goes now (it does not wait for more)."""
        while True:
            page = await self.list_events(after=after, task_id=task_id, name=name, limit=page_size)
            for event in page.events:
                yield event
            if len(page.events) < page_size:
                return
            after = page.next

    async def health(self) -> Health:
        return await self._run(calls.health())

    async def ready(self) -> dict[str, Any]:
        """``{"status": "ready", "database", "schema_version"}``; DatabaseUnavailable or
        SchemaNotReady when the server cannot use its database."""
        return await self._run(calls.ready())
