"""``tasker.client`` against a real ``tasker serve`` subprocess on both backends (issue 17):
every operation returns its typed result, every error raises the class the local API
raises, and the async client does the same. Steps run in this process, as a worker
would (``ApiServer.run``)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from api_support import (
    BACKENDS,
    ApiServer,
    free_port,
    module_database,
    module_server,
    running_server,
)

from tasker.client import (
    AsyncClient,
    BatchItem,
    Client,
    Forbidden,
    ServerUnavailable,
    StepReadiness,
    Task,
    TaskExecutionContext,
    Unauthorized,
    WaitTimeout,
)
from tasker.exceptions import (
    IdempotencyConflict,
    InvalidTransition,
    NotFound,
    SignalConflict,
    TemplateNotFound,
    ValidationError,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "client") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[Client]:
    with Client(api.base_url) as client:
        yield client


def order(client: Client, order_id: int = 1, **fields: Any) -> Task:
    return client.create_task("order", {"order_id": order_id}, namespace="apitest", **fields)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_is_idempotent_and_returns_the_typed_task(client: Client) -> None:
    # Given a task created with an idempotency key
    key = unique("order")
    task = order(client, 7, idempotency_key=key, tags=["vip"], reason="checkout")
    # Then it comes back typed: its steps, aware UTC times, the fields sent
    assert (task.namespace, task.name, task.version, task.status) == (
        "apitest",
        "order",
        "2.0.0",
        "pending",
    )
    assert task.context == {"order_id": 7} and task.tags == ("vip",) and task.reason == "checkout"
    assert task.idempotency_key == key and task.created_at.tzinfo == UTC
    assert [s.name for s in task.steps or ()] == ["validate", "charge", "ship"]
    assert task.step("charge").depends_on == ("validate",)
    assert task.data["id"] == task.id  # the JSON as received, newer fields included
    # When the same request comes again with the key: the same task
    assert order(client, 7, idempotency_key=key, tags=["vip"], reason="checkout").id == task.id
    # And another request with that key is the local API's IdempotencyConflict
    with pytest.raises(IdempotencyConflict) as conflict:
        order(client, 8, idempotency_key=key)
    assert (conflict.value.key, conflict.value.task_id) == (key, task.id)
    assert client.get_task(task.id) == task


def test_errors_raise_the_local_api_exceptions(client: Client) -> None:
    with pytest.raises(NotFound, match="999999"):
        client.get_task(999_999)
    with pytest.raises(TemplateNotFound):
        client.create_task("no_such_template", {}, namespace="apitest")
    with pytest.raises(ValidationError) as invalid:
        client.create_task("order", {"order_id": "seven"}, namespace="apitest")
    assert any("order_id" in e for e in invalid.value.errors)
    with pytest.raises(ValidationError):  # refused by the API's request validation
        client.list_tasks(limit=0)
    with pytest.raises(ValidationError):
        client.transitions(1, cursor="not-a-cursor")
    task = order(client)
    with pytest.raises(InvalidTransition) as refused:  # nothing failed: nothing to retry
        client.retry_task(task.id)
    assert refused.value.entity == f"task {task.id}"


def test_list_tasks_pages_and_iter_tasks_follows_the_cursor(api: ApiServer, client: Client) -> None:
    made = [client.create_task("paged", {}, namespace="apipaged").id for _ in range(5)]
    first = client.list_tasks(namespace="apipaged", limit=2)
    assert len(first.tasks) == 2 and first.next_cursor is not None
    assert first.tasks[0].steps is None  # lists leave the steps out
    second = client.list_tasks(namespace="apipaged", limit=2, cursor=first.next_cursor)
    assert [t.id for t in first.tasks + second.tasks] == sorted(made, reverse=True)[:4]
    everything = [t.id for t in client.iter_tasks(namespace="apipaged", page_size=2)]
    assert everything[: len(made)] == sorted(made, reverse=True)
    assert all(
        t.status == "pending" for t in client.iter_tasks(namespace="apipaged", status="pending")
    )


def test_wait_returns_the_settled_task_and_times_out_otherwise(
    api: ApiServer, client: Client
) -> None:
    # Given a task a worker runs meanwhile
    task = order(client)
    worker = threading.Thread(target=api.run, args=(task.id,))
    worker.start()
    try:
        done = client.wait(task.id, timeout_seconds=30, poll_seconds=0.05)
    finally:
        worker.join()
    assert done.status == "complete" and done.completed_at is not None
    assert all(s.status == "complete" for s in done.steps or ())
    # And a task nobody runs: WaitTimeout (a TimeoutError) carries the last state seen
    idle = order(client)
    with pytest.raises(WaitTimeout) as timed_out:
        client.wait(idle.id, timeout_seconds=0.2, poll_seconds=0.05)
    assert isinstance(timed_out.value, TimeoutError)
    assert timed_out.value.task.id == idle.id and timed_out.value.task.status == "pending"


def test_cancel_retry_and_resolve(api: ApiServer, client: Client) -> None:
    # Cancel
    cancelled = client.cancel_task(order(client).id, reason="customer changed mind")
    assert cancelled.status == "cancelled"
    # A failed task (its gate closed): retry one step, then the task, then resolve
    gate = api.gate(unique("gate"))
    failed = client.create_task("gated", {"gate": str(gate)}, namespace="apitest")
    assert api.run(failed.id) == "error"
    assert client.get_task(failed.id).step("charge").status == "error"
    reopened = client.retry_step(failed.id, "charge", reason="card updated")
    assert reopened.step("charge").status == "pending" and reopened.step("charge").attempts == 0
    assert api.run(failed.id) == "error"  # still closed
    gate.touch()
    assert client.retry_task(failed.id, reason="gate open").status == "in_progress"
    assert api.run(failed.id) == "complete"
    # Resolve a step by hand, with its results
    other = client.create_task(
        "gated", {"gate": str(api.gate(unique("shut")))}, namespace="apitest"
    )
    assert api.run(other.id) == "error"
    resolved = client.resolve_step(other.id, "charge", reason="paid by phone", results={"p": 1})
    assert resolved.step("charge").status == "resolved_manually"
    assert resolved.step("charge").results == {"p": 1}
    assert api.run(other.id) == "complete"
    history = list(client.iter_transitions(other.id, page_size=3))
    assert [t.reason for t in history if t.step_name == "charge"][-1] == "paid by phone"
    assert history == list(client.transitions(other.id).transitions)


def test_signals(api: ApiServer, client: Client) -> None:
    task = client.create_task("routed", {"choose": ["express"]}, namespace="apitest")
    # A signal that comes early is kept; the same again changes nothing; another conflicts
    receipt = client.send_signal(task.id, "approval", {"by": "ann"})
    assert (receipt.task_id, receipt.signal, receipt.step) == (task.id, "approval", "approve")
    assert receipt.created and receipt.received_at.tzinfo == UTC
    assert not client.send_signal(task.id, "approval", {"by": "ann"}).created
    with pytest.raises(SignalConflict):
        client.send_signal(task.id, "approval", {"by": "bob"})
    with pytest.raises(NotFound):
        client.send_signal(task.id, "no such signal")
    assert api.run(task.id) == "complete"
    assert client.get_task(task.id).step("approve").results == {"by": "ann"}


def test_readiness_context_dag_events_and_health(api: ApiServer, client: Client) -> None:
    task = order(client)
    readiness = client.readiness(task.id)
    assert all(isinstance(r, StepReadiness) for r in readiness)
    by_name = {r.name: r for r in readiness}
    assert by_name["validate"].ready_for_execution
    assert by_name["charge"].blocking_reason == "dependencies_not_satisfied"
    context = client.execution_context(task.id)
    assert isinstance(context, TaskExecutionContext)
    assert (context.total_steps, context.execution_status) == (3, "has_ready_steps")
    dag = client.dag(task.id)
    assert dag.levels == (("validate",), ("charge",), ("ship",))
    assert ("validate", "charge") in dag.edges
    assert api.run(task.id) == "complete"
    # Events of the task, paged and iterated
    page = client.list_events(task_id=task.id, limit=2)
    assert len(page.events) == 2 and page.next == page.events[-1].id
    events = list(client.iter_events(task_id=task.id, page_size=2))
    assert events[:2] == list(page.events)
    assert events[0].name == "workflow.task_created" and events[-1].name.startswith("workflow.")
    assert "task.completed" in [e.name for e in events]
    assert {e.task_id for e in events} == {task.id}
    assert client.list_events(after=events[-1].id, task_id=task.id).events == ()
    # Health
    health = client.health()
    assert health.status in ("healthy", "degraded") and health.counts.total_tasks >= 1
    assert client.ready()["status"] == "ready"


def test_create_tasks_sends_one_batch_and_returns_each_items_result(client: Client) -> None:
    # Given a keyed task already made, and a batch repeating its key beside new items
    key = unique("batch")
    first = order(client, 40, idempotency_key=key)
    items = [
        {
            "namespace": "apitest",
            "name": "order",
            "context": {"order_id": 40},
            "idempotency_key": key,
        },
        {"namespace": "apitest", "name": "order", "context": {"order_id": 41}},
        {"namespace": "apitest", "name": "order", "context": {"order_id": "x"}},
    ]

    # When the client creates them
    batch = client.create_tasks(items)

    # Then each item's result comes back typed, with the counts
    assert (batch.created, batch.existing, batch.failed) == (1, 1, 1)
    assert batch.results[0] == BatchItem(0, first.id, False, None)
    made = batch.results[1].task_id
    assert made is not None and client.get_task(made).context == {"order_id": 41}
    assert batch.results[2].task_id is None
    assert (batch.results[2].error or "").startswith("item 2: ")


def test_the_async_client_does_the_same(api: ApiServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(api.base_url) as client:
            key = unique("async")
            task = await client.create_task(
                "order", {"order_id": 3}, namespace="apitest", idempotency_key=key
            )
            again = await client.create_task(
                "order", {"order_id": 3}, namespace="apitest", idempotency_key=key
            )
            assert again.id == task.id
            with pytest.raises(IdempotencyConflict):
                await client.create_task(
                    "order", {"order_id": 4}, namespace="apitest", idempotency_key=key
                )
            with pytest.raises(NotFound):
                await client.get_task(999_999)
            worker = asyncio.create_task(asyncio.to_thread(api.run, task.id))
            done = await client.wait(task.id, timeout_seconds=30, poll_seconds=0.05)
            await worker
            assert done.status == "complete"
            with pytest.raises(WaitTimeout):
                idle = await client.create_task("order", {"order_id": 5}, namespace="apitest")
                await client.wait(idle.id, timeout_seconds=0.2, poll_seconds=0.05)
            assert (await client.cancel_task(idle.id)).status == "cancelled"
            page = await client.list_tasks(namespace="apitest", limit=1)
            assert len(page.tasks) == 1
            listed = [t.id async for t in client.iter_tasks(namespace="apitest", page_size=2)]
            assert {task.id, idle.id} <= set(listed)
            history = [t async for t in client.iter_transitions(task.id, page_size=2)]
            assert len(history) == 12
            events = [e async for e in client.iter_events(task_id=task.id, page_size=3)]
            assert events[-1].name == "workflow.task_finalized"
            assert (await client.readiness(task.id))[0].current_state == "complete"
            assert (await client.execution_context(task.id)).execution_status == "all_complete"
            assert (await client.dag(task.id)).task_id == task.id
            assert (await client.health()).counts.total_tasks >= 2
            signalled = await client.create_task(
                "routed", {"choose": ["standard"]}, namespace="apitest"
            )
            assert (await client.send_signal(signalled.id, "approval", True)).created
            assert (await client.ready())["status"] == "ready"
            batch = await client.create_tasks(
                [{"namespace": "apitest", "name": "order", "context": {"order_id": 6}}]
            )
            assert batch.created == 1 and batch.results[0].task_id is not None

    asyncio.run(scenario())


def test_no_server_is_server_unavailable() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", timeout_seconds=2) as client,
        pytest.raises(ServerUnavailable) as down,
    ):
        client.get_task(1)
    assert down.value.status == 0

    async def scenario() -> None:
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=2) as client:
            await client.health()

    with pytest.raises(ServerUnavailable):
        asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_tokens_and_scopes_over_the_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    root = tmp_path_factory.mktemp(f"client-auth-{backend}")
    with module_database(request, backend, root) as url, running_server(
        url, root, {"TASKER_AUTH": "on"}
    ) as server:  # fmt: skip
        tokens = server.create_tokens({"reader": ["tasks:read"], "writer": ["tasks:write"]})
        with Client(server.base_url) as anonymous, pytest.raises(Unauthorized) as missing:
            anonymous.list_tasks()
        assert missing.value.status == 401 and missing.value.code == "unauthorized"
        with (
            Client(server.base_url, token="tk_" + "A" * 32) as forged,
            pytest.raises(Unauthorized),
        ):
            forged.health()
        with Client(server.base_url, token=tokens["reader"]) as reader:
            with pytest.raises(Forbidden) as denied:
                reader.create_task("order", {"order_id": 1}, namespace="apitest")
            assert denied.value.details["required_scope"] == "tasks:write"
        # tasks:write implies tasks:read: the writer reads back what it created
        with Client(server.base_url, token=tokens["writer"]) as writer:
            task = writer.create_task("order", {"order_id": 1}, namespace="apitest")
            assert writer.get_task(task.id).id == task.id
            assert [t.id for t in writer.iter_tasks()] == [task.id]
            assert writer.cancel_task(task.id).status == "cancelled"
