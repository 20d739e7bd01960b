"""``GET /v1/events``, ``GET /v1/events/stream`` and ``GET /v1/workers`` on a real uvicorn
subprocess, both backends (authentication off; the scope rules are test_api_auth.py's,
checked here once with a read-only token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import (
    BACKENDS,
    ApiServer,
    assert_error,
    create_task,
    module_database,
    module_server,
    running_server,
)

from tasker.definitions import HandlerCoverage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "events") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def finished_task(client: httpx.Client, api: ApiServer) -> int:
    task_id: int = create_task(client)["id"]
    assert api.run(task_id) == "complete"
    return task_id


def read_stream(
    client: httpx.Client, params: dict[str, Any], headers: dict[str, str], count: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The first ``count`` events of a stream, and the SSE ids they came with."""
    events: list[dict[str, Any]] = []
    ids: list[str] = []
    with client.stream("GET", "/v1/events/stream", params=params, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(line[4:])
            elif line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == count:
                    break
    return events, ids


def test_events_of_a_task_come_in_id_order_and_the_cursor_pages_through_them(
    client: httpx.Client, api: ApiServer
) -> None:
    # Given a task that ran to completion
    task_id = finished_task(client, api)
    # When its events are listed
    page = client.get("/v1/events", params={"task_id": task_id}).json()
    # Then they are its own, oldest first, from creation to completion
    names = [e["name"] for e in page["events"]]
    assert names[0] == "workflow.task_created" and "task.completed" in names, names
    assert {e["task_id"] for e in page["events"]} == {task_id}
    ids = [e["id"] for e in page["events"]]
    assert ids == sorted(ids) and page["next"] == ids[-1]
    # And one at a time, the cursor walks the same events and then stays put
    walked, cursor = [], 0
    while True:
        one = client.get("/v1/events", params={"task_id": task_id, "after": cursor, "limit": 1})
        body = one.json()
        if not body["events"]:
            assert body["next"] == cursor
            break
        walked += body["events"]
        cursor = body["next"]
    assert [e["id"] for e in walked] == ids


def test_events_filter_by_name(client: httpx.Client, api: ApiServer) -> None:
    task_id = finished_task(client, api)
    page = client.get("/v1/events", params={"task_id": task_id, "name": "step.completed"})
    steps = [(e["name"], e["step_name"]) for e in page.json()["events"]]
    assert steps == [
        ("step.completed", "validate"),
        ("step.completed", "charge"),
        ("step.completed", "ship"),
    ]


def test_bad_event_parameters_are_422(client: httpx.Client) -> None:
    assert_error(client.get("/v1/events", params={"after": "-1"}), 422, "invalid_request")
    assert_error(client.get("/v1/events", params={"limit": "5000"}), 422, "invalid_request")
    assert_error(client.get("/v1/events", params={"task_id": "1e3"}), 422, "invalid_request")
    bad = client.get("/v1/events/stream", headers={"Last-Event-ID": "x"})
    assert_error(bad, 422, "invalid_cursor")


def test_the_stream_sends_events_as_they_happen_and_resumes_from_last_event_id(
    client: httpx.Client, api: ApiServer
) -> None:
    # Given a finished task: its events are in the log
    task_id = finished_task(client, api)
    all_events = client.get("/v1/events", params={"task_id": task_id}).json()["events"]
    # When a stream of that task is read from the start
    events, ids = read_stream(client, {"task_id": task_id}, {}, 3)
    # Then it sends the same events, each with its id as the SSE id
    assert events == all_events[:3]
    assert ids == [str(e["id"]) for e in all_events[:3]]
    # When a client reconnects with Last-Event-ID (which wins over ?after=)
    resumed, _ = read_stream(
        client, {"task_id": task_id, "after": 0}, {"Last-Event-ID": ids[-1]}, 2
    )
    # Then it gets what came next, nothing twice
    assert resumed == all_events[3:5]


def test_the_stream_delivers_an_event_committed_after_it_opened(
    client: httpx.Client, api: ApiServer
) -> None:
    # Given a stream opened on the end of the log, filtered on task creations
    last = client.get("/v1/events", params={"after": 0, "limit": 1000}).json()["next"]
    with client.stream(
        "GET", "/v1/events/stream", params={"after": last, "name": "workflow.task_created"}
    ) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        # When a task is created afterwards
        task_id = create_task(client)["id"]
        # Then its creation arrives on the open stream
        data = next(line for line in lines if line.startswith("data: "))
    event = json.loads(data[6:])
    assert (event["name"], event["task_id"]) == ("workflow.task_created", task_id)


def test_workers_lists_a_live_worker_with_its_running_step_and_a_stopped_one(
    client: httpx.Client, api: ApiServer
) -> None:
    task_id = create_task(client)["id"]
    with api.tasker() as tasker:
        # Given a worker that registered and claimed the task's first step
        coverage = HandlerCoverage(
            handlers=("tasker.builtin_handlers:noop",), templates=("apitest/order@2.0.0",)
        )
        tasker.register_worker(
            "w-live",
            hostname="host-a",
            pid=4242,
            namespaces=["apitest"],
            concurrency=2,
            lease_seconds=60,
            handlers=coverage,
        )
        claimed = tasker.claim("w-live", 1, task_id=task_id, lease_seconds=60)
        assert [s.name for s in claimed] == ["validate"]
        # And another that stopped, leaving a thread behind
        tasker.register_worker(
            "w-gone",
            hostname="host-b",
            pid=1,
            namespaces=[],
            concurrency=1,
            lease_seconds=60,
            handlers=HandlerCoverage(),
        )
        tasker.stop_worker("w-gone", abandoned_threads=1)
    # When the workers are listed
    workers = {w["id"]: w for w in client.get("/v1/workers").json()}
    # Then the live one says what it runs and serves
    live = workers["w-live"]
    assert (live["state"], live["hostname"], live["pid"]) == ("active", "host-a", 4242)
    assert live["templates"] == ["apitest/order@2.0.0"]
    assert live["handlers"] == ["tasker.builtin_handlers:noop"]
    assert live["held_steps"] == 1
    assert [(r["task_id"], r["name"]) for r in live["running"]] == [(task_id, "validate")]
    assert 0 <= live["heartbeat_age_seconds"] < 60
    # And the stopped one is listed as stopped with its abandoned thread
    gone = workers["w-gone"]
    assert (gone["state"], gone["abandoned_threads"], gone["running"]) == ("stopped", 1, [])


@pytest.fixture(scope="module")
def auth_api(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    root = tmp_path_factory.mktemp("events-auth")
    with module_database(request, "sqlite", root) as url, running_server(
        url, root, {"TASKER_AUTH": "on"}
    ) as server:  # fmt: skip
        yield server, server.create_tokens({"r": ["tasks:read"]})["r"]


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/stream?after=0", "/v1/workers"])
def test_with_auth_on_the_reads_need_a_read_token(auth_api: Any, path: str) -> None:
    server, token = auth_api
    with server.client() as anonymous:
        assert_error(anonymous.get(path), 401, "unauthorized")
    with server.client(token) as reader:
        if "stream" in path:
            with reader.stream("GET", path) as response:
                assert response.status_code == 200
        else:
            assert reader.get(path).status_code == 200
