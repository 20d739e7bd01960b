"""Dynamic workflows through the real REST API and the real CLI, on both backends:
branches and skipping in the task JSON and readiness, signals (201, 200 for the same one
again, 409 for another payload, 404 for an unknown name), and resolving a branching step
with a branch choice. Steps run in the test process, as a worker would run them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import BACKENDS, ApiServer, assert_error, create_task, module_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "dynamic") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def steps(client: httpx.Client, task_id: int) -> dict[str, dict[str, Any]]:
    task = client.get(f"/v1/tasks/{task_id}").json()
    return {step["name"]: step for step in task["steps"]}


def readiness(client: httpx.Client, task_id: int) -> dict[str, str | None]:
    rows = client.get(f"/v1/tasks/{task_id}/readiness").json()
    return {row["name"]: row["blocking_reason"] for row in rows}


def test_a_routed_task_waits_for_its_signal_then_completes(
    client: httpx.Client, api: ApiServer
) -> None:
    # Given a routed task that takes the express branch
    task_id = create_task(client, "routed", context={"choose": ["express"]})["id"]
    # When its steps run as far as they can
    assert api.run(task_id) == "in_progress"
    # Then standard is skipped, approve waits for its signal, and the JSON shows both
    found = steps(client, task_id)
    assert found["standard"]["status"] == "skipped"
    assert found["route"]["branches"] == ["express", "standard"]
    assert found["approve"]["wait_for"] == "approval"
    assert found["approve"]["join"] == "any"
    assert readiness(client, task_id) == {
        "route": "finished",
        "express": "finished",
        "standard": "skipped",
        "approve": "waiting_for_signal",
        "ship": "dependencies_not_satisfied",
    }
    shown = api.cli("task", "show", str(task_id))
    assert shown.returncode == 0, shown.stderr
    assert "waiting for signal approval" in shown.stdout
    assert "standard  skipped" in shown.stdout
    # When the approval is posted, Then it is 201 and releases the step
    sent = client.post(f"/v1/tasks/{task_id}/signals/approval", json={"by": "ann"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["created"] is True and sent.json()["released"] is True
    assert sent.json()["step"] == "approve"
    # and the same signal again is 200 with nothing changed; another payload is 409
    again = client.post(f"/v1/tasks/{task_id}/signals/approval", json={"by": "ann"})
    assert again.status_code == 200 and again.json()["created"] is False
    other = client.post(f"/v1/tasks/{task_id}/signals/approval", json={"by": "bob"})
    assert assert_error(other, 409, "signal_conflict")["details"]["signal"] == "approval"
    # and the task completes, ship reading the signal and an ancestor's results
    assert api.run(task_id) == "complete"
    assert steps(client, task_id)["ship"]["results"] == {
        "approval": {"by": "ann"},
        "route": {"chose": ["express"]},
    }
    events = client.get("/v1/events", params={"task_id": task_id}).json()
    names = [e["name"] for e in (events["events"] if isinstance(events, dict) else events)]
    assert names.count("step.signal_received") == 1
    assert names.count("step.skipped") == 1


def test_signal_errors(client: httpx.Client, api: ApiServer) -> None:
    task_id = create_task(client, "routed", context={"choose": ["standard"]})["id"]
    unknown = client.post(f"/v1/tasks/{task_id}/signals/aproval", json={})
    assert "signals: approval" in assert_error(unknown, 404, "not_found")["message"]
    assert_error(client.post("/v1/tasks/987654321/signals/approval"), 404, "not_found")
    assert client.post(f"/v1/tasks/{task_id}/cancel").status_code == 200
    finished = client.post(f"/v1/tasks/{task_id}/signals/approval", json=True)
    assert_error(finished, 409, "invalid_transition")


def test_a_bad_branch_fails_route_and_resolving_it_takes_a_branch(
    client: httpx.Client, api: ApiServer
) -> None:
    # Given a routed task whose route chooses a branch that does not exist
    task_id = create_task(client, "routed", context={"choose": ["air"]})["id"]
    assert api.run(task_id) == "error"
    error = steps(client, task_id)["route"]["error"]
    assert error["class"] == "InvalidBranch" and "express, standard" in error["message"]
    # When it is resolved without a branch, Then 422 names the choices
    url = f"/v1/tasks/{task_id}/steps/route/resolve"
    refused = client.post(url, json={"reason": "by hand"})
    assert "express, standard" in assert_error(refused, 422, "validation_error")["message"]
    # When it is resolved through the CLI with --branch standard
    result = api.cli(
        "step", "resolve", str(task_id), "route", "--reason", "ops", "--branch", "standard"
    )
    assert result.returncode == 0, result.stderr
    # Then express is skipped, approve waits; the CLI's signal releases it
    found = steps(client, task_id)
    assert found["express"]["status"] == "skipped"
    assert api.run(task_id) == "in_progress"
    sent = api.cli("task", "signal", str(task_id), "approval", "--payload", '{"ok": 1}')
    assert sent.returncode == 0, sent.stderr
    assert "step approve goes on" in sent.stdout
    same = api.cli("task", "signal", str(task_id), "approval", "--payload", '{"ok": 1}')
    assert same.returncode == 0 and "already received" in same.stdout
    other = api.cli("task", "signal", str(task_id), "approval", "--payload", '{"ok": 2}')
    assert other.returncode == 2 and "different payload" in other.stderr
    bad = api.cli("task", "signal", str(task_id), "approval", "--payload", "{nope")
    assert bad.returncode == 2 and "--payload is not valid JSON" in bad.stderr
    assert api.run(task_id) == "complete"
    shown = api.cli("task", "show", str(task_id), "--json")
    assert shown.returncode == 0, shown.stderr
    by_name = {s["name"]: s for s in json.loads(shown.stdout)["steps"]}
    assert by_name["express"]["status"] == "skipped"
    assert by_name["approve"]["results"] == {"ok": 1}
