"""The REST API's operational side as a real uvicorn subprocess (authentication off), on
both backends: templates, health probes, Prometheus metrics, analytics, and the answers
when the database is not migrated or goes away.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from api_support import (
    BACKENDS,
    ApiServer,
    assert_error,
    create_task,
    drop_database,
    module_database,
    module_server,
    running_server,
)

from tasker import FakeClock, Tasker
from tasker.definitions import HandlerCoverage
from tasker.store import open_database
from tasker.store.queries import load_migrations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with module_server(request, tmp_path_factory, "ops") as server:
        yield server


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


# -- templates ----------------------------------------------------------------------------


def test_templates_list_and_show_with_dag(client: httpx.Client) -> None:
    listed = client.get("/v1/templates").json()
    keys = {(t["namespace"], t["name"], t["version"]) for t in listed}
    assert {("apitest", "order", "1.0.0"), ("apitest", "order", "2.0.0")} <= keys
    assert {t["namespace"] for t in client.get("/v1/templates?namespace=apipaged").json()} == {
        "apipaged"
    }

    shown = client.get("/v1/templates/apitest/gated").json()
    assert shown["version"] == "1.0.0" and shown["versions"] == ["1.0.0"]
    assert shown["dag"]["levels"] == [["prepare"], ["charge", "notify"], ["ship"]]
    assert shown["dag"]["topological_order"][0] == "prepare"
    steps = {s["name"]: s for s in shown["steps"]}
    assert steps["charge"]["max_attempts"] == 1 and steps["ship"]["level"] == 2

    order = client.get("/v1/templates/apitest/order").json()
    assert order["version"] == "2.0.0" and order["versions"] == ["1.0.0", "2.0.0"]
    assert order["context_schema"]["required"] == ["order_id"]
    old = client.get("/v1/templates/apitest/order", params={"version": "1.0.0"}).json()
    assert old["description"] == "Validate, charge, ship"

    assert_error(client.get("/v1/templates/apitest/nope"), 404, "template_not_found")
    assert_error(
        client.get("/v1/templates/apitest/order", params={"version": "3"}),
        404,
        "template_not_found",
    )


# -- health and metrics -------------------------------------------------------------------


def test_health_live_ready_and_status(api: ApiServer, client: httpx.Client) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready").json()
    latest = max(v for v, _, _ in load_migrations("sqlite"))
    assert ready["status"] == "ready" and ready["schema_version"] == latest
    assert ready["database"] == ("sqlite" if api.db_url.startswith("sqlite") else "postgres")

    # Given workers judged by their own lease, whatever the server's TASKER_LEASE_SECONDS:
    # one killed (kill -9) a minute ago with a 5 s lease, one that beat just now, one with
    # a 10-minute lease that beat 5 minutes ago, and one gone silent two days ago.
    now = datetime.now(UTC)
    for worker_id, silent_for, lease_seconds in (
        ("w-killed", timedelta(minutes=1), 5),
        ("w-live", timedelta(0), 60),
        ("w-slow", timedelta(minutes=5), 600),
        ("w-gone", timedelta(days=2), 5),
    ):
        register_worker(api, worker_id, heartbeat=now - silent_for, lease_seconds=lease_seconds)
    # When the status is asked for
    status = client.get("/health/status").json()
    # Then a worker is active while its last heartbeat is within its own lease
    workers = {w["id"]: w for w in status["workers"]}
    assert {w: workers[w]["state"] for w in workers} == {
        "w-killed": "stale",
        "w-live": "active",
        "w-slow": "active",
    }
    assert status["status"] == "degraded"
    assert status["counts"]["active_workers"] == 2
    assert _gauge(client, "tasker_active_workers") == 2
    assert status["counts"]["total_tasks"] >= 0 and "claimable_steps" in status["counts"]
    assert (workers["w-slow"]["lease_seconds"], workers["w-live"]["namespaces"]) == (
        600,
        ["apitest"],
    )
    # And a worker that stopped cleanly is shown as stopped
    with api.tasker() as tasker:
        tasker.stop_worker("w-killed")
    workers = {w["id"]: w for w in client.get("/health/status").json()["workers"]}
    assert workers["w-killed"]["state"] == "stopped"


def register_worker(
    api: ApiServer, worker_id: str, *, heartbeat: datetime, lease_seconds: float
) -> None:
    """A worker row as ``tasker worker`` registers it, its last heartbeat at ``heartbeat``."""
    with Tasker(open_database(api.db_url), clock=FakeClock(heartbeat)) as tasker:
        tasker.register_worker(
            worker_id,
            hostname="host",
            pid=1,
            namespaces=["apitest"],
            concurrency=2,
            lease_seconds=lease_seconds,
            handlers=HandlerCoverage(),
        )


def test_metrics_are_prometheus_text_from_the_health_counts(client: httpx.Client) -> None:
    before = _gauge(client, 'tasker_tasks{status="pending"}')
    created_before = _gauge(client, "tasker_tasks_created_total")
    create_task(client)
    response = client.get("/metrics")
    assert _gauge(client, "tasker_tasks_created_total") == created_before + 1
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE tasker_tasks gauge" in response.text
    assert _gauge(client, 'tasker_tasks{status="pending"}') == before + 1
    for name in ("tasker_steps_claimable", "tasker_expired_leases", "tasker_active_workers"):
        assert f"\n{name} " in response.text


def _gauge(client: httpx.Client, series: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {series}")


# -- analytics ----------------------------------------------------------------------------


def test_analytics_performance_and_bottlenecks(api: ApiServer, client: httpx.Client) -> None:
    tid = create_task(client)["id"]
    assert api.run(tid) == "complete"
    performance = client.get("/v1/analytics/performance").json()
    assert performance["tasks_created"] >= 1 and performance["tasks_completed"] >= 1
    start = datetime.fromisoformat(performance["analysis_period_start"])
    end = datetime.fromisoformat(performance["calculated_at"])
    assert timedelta(hours=23) < end - start <= timedelta(hours=24, seconds=1)

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = client.get("/v1/analytics/performance", params={"since": future}).json()
    assert later["tasks_created"] == 0
    ancient = client.get("/v1/analytics/performance", params={"since": "0001-01-01T00:00:00+05:00"})
    assert ancient.status_code == 200
    for bad in ("yesterday", "1700000000", "0.5", "2026-13-01T00:00:00Z"):
        response = client.get("/v1/analytics/performance", params={"since": bad})
        assert_error(response, 422, "invalid_request")

    bottlenecks = client.get("/v1/analytics/bottlenecks", params={"limit": 100}).json()
    assert tid in {t["task_id"] for t in bottlenecks["slowest_tasks"]}
    assert tid in {s["task_id"] for s in bottlenecks["slowest_steps"]}
    durations = [s["duration_seconds"] for s in bottlenecks["slowest_steps"]]
    assert durations == sorted(durations, reverse=True)
    one = client.get("/v1/analytics/bottlenecks", params={"limit": 1}).json()
    assert len(one["slowest_steps"]) == 1
    assert_error(client.get("/v1/analytics/bottlenecks?limit=0"), 422, "invalid_request")


def test_analytics_timeline(api: ApiServer, client: httpx.Client) -> None:
    # Given a task that completed just now
    tid = create_task(client)["id"]
    assert api.run(tid) == "complete"
    steps = len(client.get(f"/v1/tasks/{tid}").json()["steps"])

    # When the last 24 hours are asked for, hour by hour (the default)
    timeline = client.get("/v1/analytics/timeline").json()

    # Then there are 24 buckets an hour apart, and the newest holds the steps
    buckets = timeline["buckets"]
    assert timeline["bucket_seconds"] == 3600 and len(buckets) == 24
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert {b - a for a, b in pairwise(starts)} == {timedelta(hours=1)}
    assert buckets[-1]["completed"] >= steps and buckets[-1]["p50_seconds"] is not None
    assert buckets[0]["completed"] == 0 and buckets[0]["p95_seconds"] is None

    # And a window of more than 1,000 buckets, or a bucket of 0 s, is refused with its reason
    response = client.get("/v1/analytics/timeline", params={"bucket_seconds": 60})
    assert_error(response, 422, "too_many_buckets")
    assert "more than 1000 buckets of 60 s" in response.json()["error"]["message"]
    assert_error(client.get("/v1/analytics/timeline?bucket_seconds=0"), 422, "invalid_request")


# -- the database not being there ---------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.db"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


def test_unmigrated_database_is_503_but_the_process_is_live(
    unmigrated_url: str, tmp_path: Path
) -> None:
    with running_server(unmigrated_url, tmp_path) as server, server.client() as client:
        assert client.get("/health/live").status_code == 200
        error = assert_error(client.get("/health/ready"), 503, "schema_not_ready")
        assert "0001_initial" in error["details"]["pending"]
        assert_error(client.get("/v1/tasks"), 503, "schema_not_ready")
        assert_error(client.get("/v1/tasks/1"), 503, "schema_not_ready")
        response = client.post(
            "/v1/tasks",
            json={"namespace": "apitest", "name": "order", "context": {"order_id": 1}},
        )
        assert_error(response, 503, "schema_not_ready")


@pytest.mark.postgres
def test_database_going_away_is_503(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with (
        module_database(request, "postgres", tmp_path) as url,
        running_server(url, tmp_path) as server,
        server.client() as client,
    ):
        assert client.get("/v1/tasks").status_code == 200
        drop_database(url)
        first = client.get("/v1/tasks")
        assert first.status_code == 503, first.text
        assert first.json()["error"]["code"] in ("database_unavailable", "schema_not_ready")
        assert_error(client.get("/v1/tasks"), 503, "database_unavailable")
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200


def test_schedules_are_listed_paused_and_resumed(client: httpx.Client) -> None:
    # Given the server's templates declare apisched/nightly:at_two (stored at start)
    listed = {s["name"]: s for s in client.get("/v1/schedules").json()}
    at_two = listed["at_two"]
    assert (at_two["namespace"], at_two["template"], at_two["cron"]) == (
        "apisched",
        "nightly",
        "0 2 * * *",
    )
    assert at_two["timezone"] == "Europe/Paris" and at_two["next_fire_at"] is not None
    # When paused with a reason, Then it is paused, by the API's actor, until resumed
    paused = client.post(
        "/v1/schedules/apisched/nightly/at_two/pause", json={"reason": "maintenance"}
    )
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["paused"] and body["pause_reason"] == "maintenance" and body["paused_by"]
    assert body["next_fire_at"] is None
    resumed = client.post("/v1/schedules/apisched/nightly/at_two/resume").json()
    assert not resumed["paused"] and resumed["next_fire_at"] == at_two["next_fire_at"]
    # And unknown schedules and bad bodies are refused
    missing = client.post("/v1/schedules/apisched/nightly/weekly/pause")
    assert_error(missing, 404, "not_found")
    bad = client.post("/v1/schedules/apisched/nightly/at_two/pause", json={"why": "x"})
    assert_error(bad, 422, "invalid_request")
