"""A Python client for the REST API of ``tasker serve`` (docs/client.md).

``Client`` (blocking) and ``AsyncClient`` (asyncio) mirror the API's operations, return
frozen dataclasses, and raise the exceptions the local API raises (``tasker.exceptions``),
plus ``ApiError`` and its subclasses for what only HTTP has::

    from tasker.client import Client

    with Client("http://127.0.0.1:8000", token="tk_...") as tasker:
        task = tasker.create_task("process_order", {"order_id": 7}, namespace="payments",
                                  idempotency_key="order-7")
        print(tasker.wait(task.id, timeout_seconds=60).status)

It needs httpx (a dependency of the package), not the API extra: the client imports
neither FastAPI nor a database driver.
"""

from __future__ import annotations

from tasker.client._async import AsyncClient
from tasker.client._errors import ApiError, Forbidden, ServerUnavailable, Unauthorized, WaitTimeout
from tasker.client._models import (
    BatchItem,
    DagStep,
    Event,
    EventPage,
    Health,
    SignalReceipt,
    Step,
    Task,
    TaskBatch,
    TaskDag,
    TaskPage,
    Transition,
    TransitionPage,
)
from tasker.client._sync import Client
from tasker.store.readiness import StepReadiness, TaskExecutionContext

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchItem",
    "Client",
    "DagStep",
    "Event",
    "EventPage",
    "Forbidden",
    "Health",
    "ServerUnavailable",
    "SignalReceipt",
    "Step",
    "StepReadiness",
    "Task",
    "TaskBatch",
    "TaskDag",
    "TaskExecutionContext",
    "TaskPage",
    "Transition",
    "TransitionPage",
    "Unauthorized",
    "WaitTimeout",
]
