"""The REST API's named operations and its paged transitions, as a real uvicorn subprocess
on both backends (issue 17)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import BACKENDS, ApiServer, assert_error, create_task, module_server

pytestmark = pytest.mark.slow

CAMEL_CASE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "polish") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def test_every_operation_has_a_unique_camel_case_id(client: httpx.Client) -> None:
    # Given the OpenAPI document the server serves
    spec = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): operation.get("operationId")
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    # Then every operation is named in camelCase (no FastAPI `name_path_method` id) ...
    unnamed = {route: oid for route, oid in operations.items() if not CAMEL_CASE.match(oid or "")}
    assert not unnamed, unnamed
    # ... once in the whole document
    ids = list(operations.values())
    assert len(ids) == len(set(ids)), sorted(ids)
    # And the ids are the ones documented (a client generator's method names)
    assert operations[("POST", "/v1/tasks")] == "createTask"
    assert operations[("GET", "/v1/tasks/{task_id}")] == "getTask"
    assert operations[("GET", "/v1/tasks/{task_id}/transitions")] == "listTaskTransitions"
    assert operations[("POST", "/v1/tasks/{task_id}/signals/{name}")] == "sendSignal"


def finished_task(api: ApiServer, client: httpx.Client) -> int:
    task_id: int = create_task(client)["id"]
    assert api.run(task_id) == "complete"
    return task_id


def test_transitions_come_whole_by_default_and_in_pages_that_add_up(
    api: ApiServer, client: httpx.Client
) -> None:
    # Given a finished task of three steps (its history: 3 task and 9 step transitions)
    task_id = finished_task(api, client)
    whole = client.get(f"/v1/tasks/{task_id}/transitions")
    assert whole.status_code == 200
    history = whole.json()
    assert len(history) == 12
    assert [h["entity"] for h in history] == ["task"] * 3 + ["step"] * 9
    assert "tasker-next-cursor" not in whole.headers and "link" not in whole.headers

    for limit in (1, 2, 3, 5, 12):
        # When it is read `limit` rows at a time, following the cursor
        pages: list[list[dict[str, Any]]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            response = client.get(f"/v1/tasks/{task_id}/transitions", params=params)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            cursor = response.headers.get("tasker-next-cursor")
            if cursor is None:
                assert "link" not in response.headers
                break
            assert response.links["next"]["url"].endswith(f"cursor={cursor}")
            params = {"limit": limit, "cursor": cursor}
        # Then the pages, full but the last, add up to the whole history in its order
        assert [row for page in pages for row in page] == history, limit
        assert all(len(page) == limit for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= limit


def test_the_link_header_is_the_next_page(api: ApiServer, client: httpx.Client) -> None:
    task_id = finished_task(api, client)
    first = client.get(f"/v1/tasks/{task_id}/transitions", params={"limit": 4})
    second = client.get(first.links["next"]["url"])
    assert second.status_code == 200
    assert [h["id"] for h in second.json()] == [
        h["id"] for h in client.get(f"/v1/tasks/{task_id}/transitions").json()[4:8]
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJiZWZvcmVfaWQiOjV9"},  # a /v1/tasks cursor: {"before_id":5}
        {"cursor": "eyJlbnRpdHkiOiJ4IiwiYWZ0ZXIiOjF9"},  # {"entity":"x","after":1}
        {"limit": 0},
        {"limit": 10_001},
    ],
)
def test_a_bad_cursor_or_limit_is_422(
    api: ApiServer, client: httpx.Client, params: dict[str, Any]
) -> None:
    task_id = create_task(client)["id"]
    response = client.get(f"/v1/tasks/{task_id}/transitions", params=params)
    assert_error(response, 422, "invalid_cursor" if "cursor" in params else "invalid_request")


def test_transitions_of_an_unknown_task_are_404(client: httpx.Client) -> None:
    response = client.get("/v1/tasks/999999/transitions", params={"limit": 1})
    assert_error(response, 404, "not_found")
