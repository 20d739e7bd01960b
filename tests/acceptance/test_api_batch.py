"""``POST /v1/tasks:batch`` against a real uvicorn subprocess, on both backends: each item
on its own (a bad one gets its error, the others are created), idempotency within and
across batches, the body's own shape refused with 422, and the write scope when
authentication is on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import BACKENDS, ApiServer, assert_error, module_database, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    root = tmp_path_factory.mktemp(f"batch-{request.param}")
    with module_database(request, request.param, root) as url, running_server(
        url, root, {"TASKER_AUTH": "on"}
    ) as server:  # fmt: skip
        yield server, server.create_tokens({"reader": ["tasks:read"], "writer": ["tasks:write"]})


@pytest.fixture
def writer(api: tuple[ApiServer, dict[str, str]]) -> Iterator[httpx.Client]:
    server, tokens = api
    with server.client(tokens["writer"]) as client:
        yield client


def order(order_id: Any, **fields: Any) -> dict[str, Any]:
    return {"namespace": "apitest", "name": "order", "context": {"order_id": order_id}, **fields}


def batch(client: httpx.Client, *items: Any) -> dict[str, Any]:
    response = client.post("/v1/tasks:batch", json={"tasks": list(items)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_item_is_created_or_fails_on_its_own(writer: httpx.Client) -> None:
    # Given a batch of two good items, an unknown template, a context failing the schema
    # and an item that is not even a task body
    body = batch(
        writer,
        order(1, tags=["bulk"]),
        {"namespace": "apitest", "name": "no_such", "context": {}},
        order("seven"),
        {"name": "order", "context": "not an object", "colour": "red"},
        order(2, version="1.0.0"),
    )

    # Then the counts and one result per item, in order
    assert (body["created"], body["existing"], body["failed"]) == (2, 0, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["created"] for r in results] == [True, False, False, False, True]
    assert results[1]["task_id"] is None
    assert results[1]["error"].startswith("item 1: ") and "apitest/no_such" in results[1]["error"]
    assert results[2]["error"].startswith("item 2: ")
    assert "is not of type 'integer'" in results[2]["error"]
    assert results[3]["error"].startswith("item 3: ")
    assert "context" in results[3]["error"] and "colour" in results[3]["error"]
    # And the created tasks are real, with their fields
    task = writer.get(f"/v1/tasks/{results[0]['task_id']}").json()
    assert task["context"] == {"order_id": 1} and task["tags"] == ["bulk"]
    assert [s["name"] for s in task["steps"]] == ["validate", "charge", "ship"]
    assert writer.get(f"/v1/tasks/{results[4]['task_id']}").json()["version"] == "1.0.0"


def test_idempotency_keys_within_and_across_batches(writer: httpx.Client) -> None:
    # Given a task made by POST /v1/tasks with key api-k1
    single = writer.post("/v1/tasks", json=order(10, idempotency_key="api-k1"))
    assert single.status_code == 201

    # When a batch repeats that key, uses api-k2 twice alike and api-k3 twice differently
    body = batch(
        writer,
        order(10, idempotency_key="api-k1"),
        order(11, idempotency_key="api-k2"),
        order(11, idempotency_key="api-k2"),
        order(12, idempotency_key="api-k3"),
        order(13, idempotency_key="api-k3"),
        order(99, idempotency_key="api-k1"),
    )

    # Then the existing and repeated keys return their task, the different ones are errors
    results = body["results"]
    assert results[0] == {
        "index": 0,
        "task_id": single.json()["id"],
        "created": False,
        "error": None,
    }
    assert results[1]["created"] and results[2]["task_id"] == results[1]["task_id"]
    assert not results[2]["created"] and results[2]["error"] is None
    assert results[3]["created"]
    assert "used by an earlier item of this batch with a different request" in results[4]["error"]
    assert results[5]["error"].startswith("item 5: ") and "'api-k1'" in results[5]["error"]
    assert (body["created"], body["existing"], body["failed"]) == (2, 2, 2)

    # And sending the whole batch again creates nothing
    again = batch(
        writer, *[order(11, idempotency_key="api-k2"), order(12, idempotency_key="api-k3")]
    )
    assert [r["task_id"] for r in again["results"]] == [
        results[1]["task_id"],
        results[3]["task_id"],
    ]
    assert (again["created"], again["existing"], again["failed"]) == (0, 2, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"tasks": {"name": "order"}}, "body.tasks: Input should be a valid list"),
        ({}, "body.tasks: Field required"),
        ({"tasks": [], "extra": 1}, "body.extra: Extra inputs are not permitted"),
        ([order(1)], "Input should be a valid dictionary"),
        ({"tasks": [order(1)] * 10_001}, "List should have at most 10000 items"),
    ],
)
def test_a_body_of_the_wrong_shape_is_422_and_creates_nothing(
    writer: httpx.Client, body: Any, expected: str
) -> None:
    before = len(writer.get("/v1/tasks", params={"limit": 200}).json()["tasks"])

    error = assert_error(writer.post("/v1/tasks:batch", json=body), 422, "invalid_request")

    assert any(expected in line for line in error["details"]), error
    assert len(writer.get("/v1/tasks", params={"limit": 200}).json()["tasks"]) == before


def test_an_empty_batch_creates_nothing(writer: httpx.Client) -> None:
    assert batch(writer) == {"results": [], "created": 0, "existing": 0, "failed": 0}


def test_the_batch_route_needs_the_write_scope(api: tuple[ApiServer, dict[str, str]]) -> None:
    server, tokens = api
    with server.client() as anonymous:
        assert_error(anonymous.post("/v1/tasks:batch", json={"tasks": []}), 401, "unauthorized")
    with server.client(tokens["reader"]) as reader:
        denied = assert_error(
            reader.post("/v1/tasks:batch", json={"tasks": [order(1)]}), 403, "forbidden"
        )
        assert denied["details"]["required_scope"] == "tasks:write"


def test_the_batch_route_is_in_openapi_and_does_not_shadow_task_routes(
    writer: httpx.Client,
) -> None:
    spec = writer.get("/openapi.json").json()
    assert "post" in spec["paths"]["/v1/tasks:batch"]
    made = batch(writer, order(5))["results"][0]["task_id"]
    assert writer.get(f"/v1/tasks/{made}").status_code == 200
    assert_error(writer.get("/v1/tasks:batch"), 405, "method_not_allowed")
