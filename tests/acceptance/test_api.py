"""The REST API's task endpoints as a real uvicorn subprocess (authentication off), on
both backends: creation and idempotency, every error status, pagination, inspection, and
a task's whole life driven through the API alone (steps execute in this process, as a
worker would). Templates, health, metrics and analytics: test_api_operations.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import (
    BACKENDS,
    STEP_KEYS,
    TASK_KEYS,
    ApiServer,
    assert_error,
    create_task,
    module_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "api") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def gated(client: httpx.Client, api: ApiServer, gate: str, **fields: Any) -> dict[str, Any]:
    return create_task(client, "gated", context={"gate": str(api.gate(gate))}, **fields)


def steps_by_name(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in task["steps"]}


# -- documents ----------------------------------------------------------------------------


def test_openapi_lists_every_contract_endpoint_and_docs_render(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    expected = {
        ("POST", "/v1/tasks"),
        ("GET", "/v1/tasks"),
        ("GET", "/v1/tasks/{task_id}"),
        ("GET", "/v1/tasks/{task_id}/transitions"),
        ("GET", "/v1/tasks/{task_id}/readiness"),
        ("GET", "/v1/tasks/{task_id}/context"),
        ("GET", "/v1/tasks/{task_id}/dag"),
        ("POST", "/v1/tasks/{task_id}/cancel"),
        ("POST", "/v1/tasks/{task_id}/retry"),
        ("POST", "/v1/tasks/{task_id}/steps/{step}/retry"),
        ("POST", "/v1/tasks/{task_id}/steps/{step}/resolve"),
        ("GET", "/v1/templates"),
        ("GET", "/v1/templates/{namespace}/{name}"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/health/status"),
        ("GET", "/metrics"),
        ("GET", "/v1/analytics/performance"),
        ("GET", "/v1/analytics/bottlenecks"),
    }
    assert expected <= paths
    # /docs is rendered by the server from that document: it works offline, no CDN
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert (
        '<a href="/openapi.json">' in docs.text and "<code>/v1/tasks/{task_id}</code>" in docs.text
    )
    assert re.search(r'(src|href)="(https?:)?//', docs.text) is None


# -- creating tasks -----------------------------------------------------------------------


def test_create_is_201_then_200_for_the_same_key_and_409_for_another_request(
    client: httpx.Client,
) -> None:
    body = {
        "namespace": "apitest",
        "name": "order",
        "context": {"order_id": 7, "note": "gift"},
        "idempotency_key": "order-7",
        "initiator": "shop",
        "source_system": "web",
        "reason": "checkout",
        "tags": ["vip", "eu"],
    }
    first = client.post("/v1/tasks", json=body)
    assert first.status_code == 201, first.text
    task = first.json()
    assert set(task) == TASK_KEYS
    assert all(set(step) == STEP_KEYS for step in task["steps"])
    assert first.headers["location"] == f"/v1/tasks/{task['id']}"
    assert (task["namespace"], task["name"], task["version"]) == ("apitest", "order", "2.0.0")
    assert task["status"] == "pending"
    assert task["context"] == {"order_id": 7, "note": "gift"}
    assert task["tags"] == ["vip", "eu"]
    assert (task["initiator"], task["source_system"], task["reason"]) == ("shop", "web", "checkout")
    assert task["created_at"].endswith("Z") and task["completed_at"] is None
    assert [s["name"] for s in task["steps"]] == ["validate", "charge", "ship"]
    assert steps_by_name(task)["ship"]["depends_on"] == ["charge"]

    again = client.post("/v1/tasks", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == task["id"]

    conflict = client.post("/v1/tasks", json={**body, "context": {"order_id": 8}})
    error = assert_error(conflict, 409, "idempotency_conflict")
    assert error["details"] == {"idempotency_key": "order-7", "task_id": task["id"]}

    other_version = client.post("/v1/tasks", json={**body, "version": "1.0.0"})
    assert_error(other_version, 409, "idempotency_conflict")

    without_key = {k: v for k, v in body.items() if k != "idempotency_key"}
    ids = {client.post("/v1/tasks", json=without_key).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and task["id"] not in ids


def test_create_picks_the_requested_version(client: httpx.Client) -> None:
    assert create_task(client, version="1.0.0")["version"] == "1.0.0"
    assert create_task(client)["version"] == "2.0.0"


def test_unknown_template_is_404(client: httpx.Client) -> None:
    missing = client.post("/v1/tasks", json={"name": "nope", "context": {}})
    assert "default/nope" in assert_error(missing, 404, "template_not_found")["message"]
    version = client.post(
        "/v1/tasks",
        json={"namespace": "apitest", "name": "order", "version": "9.9.9", "context": {}},
    )
    assert "1.0.0, 2.0.0" in assert_error(version, 404, "template_not_found")["message"]


def test_context_violations_are_422_listing_every_one(client: httpx.Client) -> None:
    response = client.post(
        "/v1/tasks",
        json={"namespace": "apitest", "name": "order", "context": {"note": 5}},
    )
    error = assert_error(response, 422, "validation_error")
    assert len(error["details"]) == 2
    assert any("order_id" in line and "required" in line for line in error["details"])
    assert any(line.startswith("$.note") for line in error["details"])


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"context": {}}, "body.name"),
        ({"name": "order", "namespace": "apitest"}, "body.context"),
        ({"name": "order", "context": [1, 2]}, "body.context"),
        ({"name": "order", "context": {}, "colour": "red"}, "body.colour"),
        ({"name": "order", "context": {}, "tags": "vip"}, "body.tags"),
        ({"name": "", "context": {}}, "body.name"),
        ({"name": "order", "context": {"a": "nul\u0000"}}, "body.context"),
        ({"name": "order\u0000", "context": {}}, "body.name"),
        ({"name": "order", "context": {}, "idempotency_key": ""}, "body.idempotency_key"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.Client, body: dict[str, Any], where: str
) -> None:
    error = assert_error(client.post("/v1/tasks", json=body), 422, "invalid_request")
    assert any(line.startswith(where) for line in error["details"]), error


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"run_at": "tomorrow"}, "body.run_at"),
        ({"run_at": 1767225600}, "body.run_at"),  # a number is not read as a Unix time
        ({"run_at": "2026-13-01T00:00:00Z"}, "body.run_at"),
        ({"delay_seconds": -1}, "body.delay_seconds"),
        ({"delay_seconds": "10m"}, "body.delay_seconds"),
        ({"delay_seconds": 1e12}, "body.delay_seconds"),
        ({"priority": "high"}, "body.priority"),
        ({"priority": 1.5}, "body.priority"),
        ({"priority": 2**31}, "body.priority"),
    ],
)
def test_bad_start_times_and_priorities_are_422_and_store_nothing(
    client: httpx.Client, fields: dict[str, Any], where: str
) -> None:
    before = client.get("/v1/tasks", params={"namespace": "apitest", "limit": 200}).json()
    body = {"namespace": "apitest", "name": "order", "context": {"order_id": 1}, **fields}
    error = assert_error(client.post("/v1/tasks", json=body), 422, "invalid_request")
    assert any(line.startswith(where) for line in error["details"]), error
    after = client.get("/v1/tasks", params={"namespace": "apitest", "limit": 200}).json()
    assert after["tasks"] == before["tasks"]


def test_run_at_with_delay_seconds_is_422(client: httpx.Client) -> None:
    body = {
        "namespace": "apitest",
        "name": "order",
        "context": {"order_id": 1},
        "run_at": "2030-01-01T00:00:00Z",
        "delay_seconds": 5,
    }
    error = assert_error(client.post("/v1/tasks", json=body), 422, "validation_error")
    assert "not both" in error["message"]


def test_a_delayed_task_with_a_priority_waits_as_scheduled(client: httpx.Client) -> None:
    # Given a task created to start in an hour, with priority 7
    task = create_task(client, delay_seconds=3600, priority=7)
    # Then the task JSON carries its start and priority, and its root is scheduled
    assert task["priority"] == 7 and task["run_at"] is not None
    assert task["run_at"] > task["created_at"]
    readiness = client.get(f"/v1/tasks/{task['id']}/readiness").json()
    assert readiness[0]["blocking_reason"] == "scheduled"
    # And run_at without a zone is UTC
    naive = create_task(client, run_at="2030-01-01T08:30:00")
    assert naive["run_at"] == "2030-01-01T08:30:00Z" and naive["priority"] == 0


def test_malformed_json_is_422_and_non_json_is_refused(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    broken = client.post("/v1/tasks", content=b'{"name": ', headers=headers)
    assert_error(broken, 422, "invalid_request")
    nan = client.post(
        "/v1/tasks", content=b'{"name": "order", "context": {"x": NaN}}', headers=headers
    )
    assert_error(nan, 422, "invalid_request")
    deep = client.post("/v1/tasks", content=b"[" * 50_000, headers=headers)
    assert_error(deep, 422, "invalid_request")
    latin1 = client.post("/v1/tasks", content=b'{"name": "\xff"}', headers=headers)
    assert_error(latin1, 422, "invalid_request")


def test_oversized_bodies_are_413(client: httpx.Client) -> None:
    big = json.dumps({"name": "order", "context": {"blob": "x" * 1_100_000}}).encode()
    declared = client.post("/v1/tasks", content=big, headers={"content-type": "application/json"})
    assert_error(declared, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64_000):
            yield big[start : start + 64_000]

    chunked = client.post(
        "/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(chunked, 413, "payload_too_large")

    small = json.dumps({"namespace": "apitest", "name": "order", "context": {"order_id": 1}})
    ok = client.post(
        "/v1/tasks", content=iter([small.encode()]), headers={"content-type": "application/json"}
    )
    assert ok.status_code == 201, ok.text


# -- reading tasks ------------------------------------------------------------------------


def test_get_task_and_bad_ids(client: httpx.Client) -> None:
    task = create_task(client)
    fetched = client.get(f"/v1/tasks/{task['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert_error(client.get("/v1/tasks/987654321"), 404, "not_found")
    for bad in (
        "0",
        "-1",
        "abc",
        str(2**63),
        "1e3",
        "1.0",
        "%201",
        "1%C2%85",
        "99999999999999999999999",
    ):
        assert_error(client.get(f"/v1/tasks/{bad}"), 422, "invalid_request")
    for path in ("transitions", "readiness", "context", "dag"):
        assert_error(client.get(f"/v1/tasks/987654321/{path}"), 404, "not_found")
        assert_error(client.get(f"/v1/tasks/{2**64}/{path}"), 422, "invalid_request")


def test_list_paginates_with_a_cursor_and_filters(client: httpx.Client) -> None:
    made = [create_task(client, "paged", namespace="apipaged", context={})["id"] for _ in range(5)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"namespace": "apipaged", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/tasks", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"tasks", "next_cursor"}
        assert all("steps" not in t for t in body["tasks"])
        seen += [t["id"] for t in body["tasks"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(made, reverse=True)

    client.post(f"/v1/tasks/{made[1]}/cancel")
    cancelled = client.get("/v1/tasks", params={"status": "cancelled", "namespace": "apipaged"})
    assert [t["id"] for t in cancelled.json()["tasks"]] == [made[1]]
    by_name = client.get("/v1/tasks", params={"name": "paged", "status": "pending"}).json()
    assert {t["id"] for t in by_name["tasks"]} == set(made) - {made[1]}
    everything = client.get("/v1/tasks", params={"limit": 200}).json()
    assert set(made) <= {t["id"] for t in everything["tasks"]}
    assert client.get("/v1/tasks", params={"namespace": "nowhere"}).json() == {
        "tasks": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
        {"status": "bogus"},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJiZWZvcmVfaWQiOiAtNX0"},  # {"before_id": -5}
        {"namespace": ""},
    ],
)
def test_list_rejects_bad_parameters_with_422(client: httpx.Client, params: dict[str, Any]) -> None:
    response = client.get("/v1/tasks", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_request", "invalid_cursor")


def test_readiness_context_dag_and_transitions_of_a_new_task(
    api: ApiServer, client: httpx.Client
) -> None:
    task = gated(client, api, "never-opened")
    tid = task["id"]
    readiness = client.get(f"/v1/tasks/{tid}/readiness").json()
    rows = {row["name"]: row for row in readiness}
    assert list(rows) == ["prepare", "charge", "notify", "ship"]
    assert rows["prepare"]["ready_for_execution"] and rows["prepare"]["blocking_reason"] is None
    assert rows["charge"]["blocking_reason"] == "dependencies_not_satisfied"
    assert (rows["ship"]["total_parents"], rows["ship"]["completed_parents"]) == (2, 0)
    assert {row["task_id"] for row in readiness} == {tid}

    context = client.get(f"/v1/tasks/{tid}/context").json()
    assert context["task_id"] == tid and context["total_steps"] == 4
    assert context["execution_status"] == "has_ready_steps"
    assert context["recommended_action"] == "execute_ready_steps"

    dag = client.get(f"/v1/tasks/{tid}/dag").json()
    assert dag["levels"] == [["prepare"], ["charge", "notify"], ["ship"]]
    assert {(e["from"], e["to"]) for e in dag["edges"]} == {
        ("prepare", "charge"),
        ("prepare", "notify"),
        ("charge", "ship"),
        ("notify", "ship"),
    }
    assert {s["name"]: s["level"] for s in dag["steps"]} == {
        "prepare": 0,
        "charge": 1,
        "notify": 1,
        "ship": 2,
    }

    history = client.get(f"/v1/tasks/{tid}/transitions").json()
    task_rows = [h for h in history if h["entity"] == "task"]
    assert [(h["from_state"], h["to_state"], h["actor"]) for h in task_rows] == [
        (None, "pending", "api")
    ]
    assert {h["step_name"] for h in history if h["entity"] == "step"} == set(rows)


# -- the whole life of tasks, through the API alone ---------------------------------------


def test_lifecycle_create_watch_diagnose_retry_resolve_cancel(
    api: ApiServer, client: httpx.Client
) -> None:
    # Create and watch: the first step is ready, nothing has run.
    task = gated(client, api, "first", reason="nightly")
    tid = task["id"]
    assert client.get(f"/v1/tasks/{tid}").json()["status"] == "pending"

    # A worker runs it: charge fails for good, ship can never run, the task fails.
    assert api.run(tid) == "error"
    failed = client.get(f"/v1/tasks/{tid}").json()
    steps = steps_by_name(failed)
    assert failed["status"] == "error" and failed["completed_at"] is not None
    assert steps["prepare"]["status"] == "complete"
    assert steps["notify"]["results"] == {"sent": True}
    assert steps["charge"]["status"] == "error"
    assert steps["charge"]["error"]["class"] == "PermanentError"
    assert "gate first is closed" in steps["charge"]["error"]["message"]
    assert steps["ship"]["status"] == "pending"

    # Diagnose: readiness says why, the execution context says what to do.
    rows = {r["name"]: r for r in client.get(f"/v1/tasks/{tid}/readiness").json()}
    assert rows["charge"]["blocking_reason"] in ("not_retryable", "retries_exhausted")
    assert rows["ship"]["blocking_reason"] == "dependencies_not_satisfied"
    context = client.get(f"/v1/tasks/{tid}/context").json()
    assert context["execution_status"] == "blocked_by_failures"
    assert context["recommended_action"] == "handle_failures"
    assert context["health_status"] == "blocked"

    # Fix the cause, retry the task: it runs again and completes.
    api.gate("first").touch()
    retried = client.post(f"/v1/tasks/{tid}/retry", json={"reason": "gate opened"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "in_progress"
    assert steps_by_name(retried.json())["charge"]["status"] == "pending"
    assert api.run(tid) == "complete"
    done = client.get(f"/v1/tasks/{tid}").json()
    assert steps_by_name(done)["charge"]["results"] == {"opened": "first"}
    assert client.get(f"/v1/tasks/{tid}/context").json()["execution_status"] == "all_complete"
    history = client.get(f"/v1/tasks/{tid}/transitions").json()
    assert ("error", "in_progress", "api", "gate opened") in {
        (h["from_state"], h["to_state"], h["actor"], h["reason"])
        for h in history
        if h["entity"] == "task"
    }
    # A finished task cannot be retried or cancelled.
    assert_error(client.post(f"/v1/tasks/{tid}/retry"), 409, "invalid_transition")
    assert_error(client.post(f"/v1/tasks/{tid}/cancel"), 409, "invalid_transition")

    # Resolve by hand: the failed step is declared done with results; dependents proceed.
    second = gated(client, api, "second")["id"]
    assert api.run(second) == "error"
    resolved = client.post(
        f"/v1/tasks/{second}/steps/charge/resolve",
        json={"reason": "charged by phone", "results": {"charge_id": "manual-1"}},
    )
    assert resolved.status_code == 200, resolved.text
    charge = steps_by_name(resolved.json())["charge"]
    assert (charge["status"], charge["results"]) == ("resolved_manually", {"charge_id": "manual-1"})
    assert api.run(second) == "complete"

    # Retry one step: it alone is re-opened, attempts reset.
    third = gated(client, api, "third")["id"]
    assert api.run(third) == "error"
    assert_error(client.post(f"/v1/tasks/{third}/steps/prepare/retry"), 409, "invalid_transition")
    assert_error(client.post(f"/v1/tasks/{third}/steps/nope/retry"), 404, "not_found")
    api.gate("third").touch()
    step_retry = client.post(f"/v1/tasks/{third}/steps/charge/retry", json={"reason": "fixed"})
    assert step_retry.status_code == 200, step_retry.text
    charge = steps_by_name(step_retry.json())["charge"]
    assert (charge["status"], charge["attempts"]) == ("pending", 0)
    assert api.run(third) == "complete"

    # Cancel: pending steps are cancelled, again is a no-op, then nothing more is allowed.
    fourth = gated(client, api, "fourth")["id"]
    cancelled = client.post(f"/v1/tasks/{fourth}/cancel", json={"reason": "customer left"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["steps"]} == {"cancelled"}
    assert client.post(f"/v1/tasks/{fourth}/cancel").status_code == 200
    assert client.get(f"/v1/tasks/{fourth}/context").json()["execution_status"] == "cancelled"
    assert_error(client.post(f"/v1/tasks/{fourth}/retry"), 409, "invalid_transition")
    resolve_cancelled = client.post(
        f"/v1/tasks/{fourth}/steps/charge/resolve", json={"reason": "x"}
    )
    message = assert_error(resolve_cancelled, 409, "invalid_transition")["message"]
    assert message.endswith("cannot go from 'cancelled' to 'resolved_manually'"), message
    assert api.run(fourth) == "cancelled"


def test_action_errors(client: httpx.Client) -> None:
    assert_error(client.post("/v1/tasks/987654321/cancel"), 404, "not_found")
    assert_error(client.post("/v1/tasks/987654321/retry"), 404, "not_found")
    tid = create_task(client)["id"]
    pending_retry = client.post(f"/v1/tasks/{tid}/retry")
    details = assert_error(pending_retry, 409, "invalid_transition")["details"]
    assert details["entity"] == f"task {tid}" and details["from_state"] == "pending"
    no_reason = client.post(f"/v1/tasks/{tid}/steps/validate/resolve", json={})
    assert_error(no_reason, 422, "invalid_request")
    no_body = client.post(f"/v1/tasks/{tid}/steps/validate/resolve")
    assert_error(no_body, 422, "invalid_request")
    unknown = client.post(f"/v1/tasks/{tid}/steps/nope/resolve", json={"reason": "x"})
    assert_error(unknown, 404, "not_found")
    extra = client.post(f"/v1/tasks/{tid}/cancel", json={"reason": "x", "force": True})
    assert_error(extra, 422, "invalid_request")


def test_unknown_routes_and_methods_use_the_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    assert_error(client.delete("/v1/tasks"), 405, "method_not_allowed")
    assert (
        "access-control-allow-origin"
        not in client.get("/health/live", headers={"Origin": "https://elsewhere.example"}).headers
    )
